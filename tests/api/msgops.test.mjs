// API tests of message operations: edit, recall, delete for me, reactions, mentions, receipts, privacy, search, typing and presence.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expectError, openWs, register, startServer } from './lib.mjs';

let srv; // normal windows
let fast; // edit and recall windows of 1 ms (test-only environment variables)
before(async () => {
  srv = await startServer();
  fast = await startServer({ env: { PLAZA_TEST_EDIT_WINDOW_MS: '1', PLAZA_TEST_RECALL_WINDOW_MS: '1' } });
});
after(async () => {
  await srv?.stop();
  await fast?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function befriend(s, a, b) {
  const r = await s.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
  assert.equal(r.status, 201, r.text);
  const ok = await s.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token });
  assert.equal(ok.status, 200, ok.text);
}

/** Two contacts with their direct chat, on server s. */
async function pair(s = srv) {
  const a = await register(s);
  const b = await register(s);
  await befriend(s, a, b);
  const res = await s.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.user.id } });
  assert.equal(res.status, 201, res.text);
  return { a, b, conv: res.json.conversation };
}

let cid = 0;
async function send(who, convId, text, extra = {}, s = srv) {
  cid += 1;
  const res = await s.call('POST', `/v1/conversations/${convId}/messages`, {
    token: who.token, body: { client_id: `ops-${cid}`, text, ...extra },
  });
  assert.equal(res.status, 201, res.text);
  return res.json.message;
}

const msgPath = (convId, msgId, rest = '') => `/v1/conversations/${convId}/messages/${msgId}${rest}`;
const edit = (who, convId, msgId, body, s = srv) => s.call('PATCH', msgPath(convId, msgId), { token: who.token, body });
const recall = (who, convId, msgId, s = srv) => s.call('POST', msgPath(convId, msgId, '/recall'), { token: who.token });
const del = (who, convId, msgId) => srv.call('DELETE', msgPath(convId, msgId), { token: who.token });
const react = (who, convId, msgId, emoji, method = 'PUT') => srv.call(method,
  msgPath(convId, msgId, `/reactions/${encodeURIComponent(emoji)}`), { token: who.token });
const history = async (who, convId) => {
  const res = await srv.call('GET', `/v1/conversations/${convId}/messages`, { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json.messages;
};
const search = (who, query) => srv.call('GET', `/v1/search/messages?${query}`, { token: who.token });
const searchIds = async (who, q, extra = '') => {
  const res = await search(who, `q=${encodeURIComponent(q)}${extra}`);
  assert.equal(res.status, 200, res.text);
  return res.json.messages.map((m) => m.id);
};
/** The events of who's stream after since, of the given type. */
const eventsOf = async (who, type, since = 0, s = srv) => {
  const res = await s.call('GET', `/v1/sync?since=${since}&limit=1000`, { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json.events.filter((e) => e.type === type);
};
const conversation = async (who, convId) => {
  const res = await srv.call('GET', '/v1/conversations', { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json.conversations.find((c) => c.id === convId);
};

describe('edit', () => {
  test('the sender edits: new text, edited_at, message.edited to every member', async () => {
    const { a, b, conv } = await pair();
    const m = await send(a, conv.id, 'see you at 7');
    assert.equal(m.edited_at, null);
    assert.equal(m.recalled, false);
    assert.deepEqual(m.reactions, {});
    const res = await edit(a, conv.id, m.id, { text: 'see you at 8' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.message.id, m.id);
    assert.equal(res.json.message.text, 'see you at 8');
    assert.match(res.json.message.edited_at, /^\d{4}-\d\d-\d\dT/);
    for (const who of [a, b]) {
      const [ev] = await eventsOf(who, 'message.edited');
      assert.deepEqual(ev.message, res.json.message);
      assert.equal((await history(who, conv.id))[0].text, 'see you at 8');
    }
  });

  test('only the sender, only text, only a message of the conversation', async () => {
    const { a, b, conv } = await pair();
    const m = await send(a, conv.id, 'original');
    expectError(assert, await edit(b, conv.id, m.id, { text: 'hijack' }), 403, 'not_sender');
    expectError(assert, await edit(a, conv.id, m.id, { text: '   ' }), 400, 'invalid_request');
    expectError(assert, await edit(a, conv.id, m.id, {}), 400, 'invalid_request');
    expectError(assert, await edit(a, conv.id, '123456789', { text: 'x' }), 404, 'not_found');
    const stranger = await register(srv);
    expectError(assert, await edit(stranger, conv.id, m.id, { text: 'x' }), 403, 'not_member');
    expectError(assert, await edit(a, conv.id, 'abc', { text: 'x' }), 400, 'invalid_request');
    assert.equal((await history(b, conv.id))[0].text, 'original');
    assert.equal((await eventsOf(b, 'message.edited')).length, 0);
  });

  test('after the window: 409 edit_window_passed, nothing changes', async () => {
    const { a, b, conv } = await pair(fast);
    const m = await send(a, conv.id, 'too late to fix', {}, fast);
    await sleep(20);
    expectError(assert, await edit(a, conv.id, m.id, { text: 'fixed' }, fast), 409, 'edit_window_passed');
    assert.equal((await eventsOf(b, 'message.edited', 0, fast)).length, 0);
  });

  test('a recalled message cannot be edited: 409 message_recalled', async () => {
    const { a, conv } = await pair();
    const m = await send(a, conv.id, 'oops');
    assert.equal((await recall(a, conv.id, m.id)).status, 200);
    expectError(assert, await edit(a, conv.id, m.id, { text: 'back' }), 409, 'message_recalled');
  });
});

describe('recall', () => {
  test('recall removes the text for everyone and tells every member', async () => {
    const { a, b, conv } = await pair();
    const m = await send(a, conv.id, 'secret plan');
    const res = await recall(a, conv.id, m.id);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.message.recalled, true);
    assert.equal(res.json.message.text, null);
    for (const who of [a, b]) {
      const evs = await eventsOf(who, 'message.recalled');
      assert.equal(evs.length, 1);
      assert.equal(evs[0].message.id, m.id);
      assert.equal(evs[0].message.text, null);
      const [h] = await history(who, conv.id);
      assert.equal(h.recalled, true);
      assert.equal(h.text, null);
      assert.equal((await conversation(who, conv.id)).last_message.recalled, true);
    }
    assert.deepEqual(await searchIds(b, 'secret'), []);
    // Again: the same answer, no second event.
    const again = await recall(a, conv.id, m.id);
    assert.equal(again.status, 200);
    assert.equal(again.json.message.recalled, true);
    assert.equal((await eventsOf(b, 'message.recalled')).length, 1);
  });

  test('only the sender: 403 not_sender; after the window: 409 recall_window_passed', async () => {
    const { a, b, conv } = await pair();
    const m = await send(a, conv.id, 'mine');
    expectError(assert, await recall(b, conv.id, m.id), 403, 'not_sender');
    const f = await pair(fast);
    const old = await send(f.a, f.conv.id, 'said and done', {}, fast);
    await sleep(20);
    expectError(assert, await recall(f.a, f.conv.id, old.id, fast), 409, 'recall_window_passed');
    assert.equal((await eventsOf(f.b, 'message.recalled', 0, fast)).length, 0);
  });
});

describe('delete for me', () => {
  test('gone from my history, search and last message only; message.deleted to me only', async () => {
    const { a, b, conv } = await pair();
    const first = await send(a, conv.id, 'keep this pineapple');
    const second = await send(b, conv.id, 'delete this pineapple');
    const res = await del(a, conv.id, second.id);
    assert.equal(res.status, 204, res.text);
    assert.deepEqual((await history(a, conv.id)).map((m) => m.id), [first.id]);
    assert.deepEqual((await history(b, conv.id)).map((m) => m.id), [second.id, first.id]);
    assert.equal((await conversation(a, conv.id)).last_message.id, first.id);
    assert.equal((await conversation(b, conv.id)).last_message.id, second.id);
    assert.deepEqual(await searchIds(a, 'pineapple'), [first.id]);
    assert.deepEqual(await searchIds(b, 'pineapple'), [second.id, first.id]);
    const [ev] = await eventsOf(a, 'message.deleted');
    assert.deepEqual({ c: ev.conversation_id, m: ev.message_id }, { c: conv.id, m: second.id });
    assert.equal((await eventsOf(b, 'message.deleted')).length, 0);
    // Twice is fine and tells nobody again.
    assert.equal((await del(a, conv.id, second.id)).status, 204);
    assert.equal((await eventsOf(a, 'message.deleted')).length, 1);
    expectError(assert, await del(a, conv.id, '123456789'), 404, 'not_found');
    expectError(assert, await del(await register(srv), conv.id, first.id), 403, 'not_member');
  });
});

describe('reactions', () => {
  test('add, list per emoji, remove; message.reaction to every member', async () => {
    const { a, b, conv } = await pair();
    const m = await send(a, conv.id, 'party at mine');
    let res = await react(a, conv.id, m.id, '👍');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.message.reactions, { '👍': [a.user.id] });
    res = await react(b, conv.id, m.id, '👍');
    assert.deepEqual(res.json.message.reactions, { '👍': [a.user.id, b.user.id] });
    res = await react(b, conv.id, m.id, '🎉');
    assert.deepEqual(res.json.message.reactions, { '👍': [a.user.id, b.user.id], '🎉': [b.user.id] });
    // Adding it again changes nothing and tells nobody.
    assert.equal((await react(b, conv.id, m.id, '🎉')).status, 200);
    res = await react(a, conv.id, m.id, '👍', 'DELETE');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.message.reactions, { '👍': [b.user.id], '🎉': [b.user.id] });
    assert.deepEqual((await history(a, conv.id))[0].reactions, res.json.message.reactions);
    for (const who of [a, b]) {
      const evs = (await eventsOf(who, 'message.reaction')).map((e) => [e.user_id, e.emoji, e.added]);
      assert.deepEqual(evs, [[a.user.id, '👍', true], [b.user.id, '👍', true], [b.user.id, '🎉', true],
        [a.user.id, '👍', false]]);
    }
  });

  test('bad emoji 400; at most 20 different emoji: 409 too_many_reactions; recalled 409', async () => {
    const { a, b, conv } = await pair();
    const m = await send(a, conv.id, 'react to me');
    expectError(assert, await react(a, conv.id, m.id, 'a b'), 400, 'invalid_request');
    expectError(assert, await react(a, conv.id, m.id, 'x'.repeat(33)), 400, 'invalid_request');
    expectError(assert, await react(a, conv.id, m.id, '\u0007'), 400, 'invalid_request');
    const bad = await srv.call('PUT', msgPath(conv.id, m.id, '/reactions/%FF'), { token: a.token });
    assert.equal(bad.status, 400, bad.text);
    for (let i = 0; i < 20; i++) assert.equal((await react(i % 2 ? a : b, conv.id, m.id, `e${i}`)).status, 200);
    expectError(assert, await react(a, conv.id, m.id, 'one-too-many'), 409, 'too_many_reactions');
    // One more user on an existing emoji is not a new emoji.
    assert.equal((await react(a, conv.id, m.id, 'e0')).status, 200);
    const [h] = await history(a, conv.id);
    assert.equal(Object.keys(h.reactions).length, 20);
    assert.equal((await recall(a, conv.id, m.id)).status, 200);
    expectError(assert, await react(b, conv.id, m.id, '👍'), 409, 'message_recalled');
    assert.deepEqual((await history(a, conv.id))[0].reactions, {});
  });
});

describe('mentions', () => {
  test('members may be mentioned; anyone else is 400 and nothing is sent', async () => {
    const { a, b, conv } = await pair();
    const m = await send(a, conv.id, '@b look', { mentions: [b.user.id] });
    assert.deepEqual(m.mentions, [b.user.id]);
    assert.deepEqual((await history(b, conv.id))[0].mentions, [b.user.id]);
    const plain = await send(a, conv.id, 'no one');
    assert.deepEqual(plain.mentions, []);
    const stranger = await register(srv);
    const body = (mentions) => ({ token: a.token, body: { client_id: `mx-${Math.random()}`, text: 'hi', mentions } });
    expectError(assert, await srv.call('POST', `/v1/conversations/${conv.id}/messages`, body([stranger.user.id])),
      400, 'invalid_request');
    expectError(assert, await srv.call('POST', `/v1/conversations/${conv.id}/messages`, body('nope')), 400,
      'invalid_request');
    expectError(assert, await srv.call('POST', `/v1/conversations/${conv.id}/messages`, body([1])), 400,
      'invalid_request');
    assert.equal((await history(a, conv.id)).length, 2);
    // An edit may change them.
    const res = await edit(a, conv.id, m.id, { text: 'never mind', mentions: [] });
    assert.deepEqual(res.json.message.mentions, []);
  });
});

describe('receipts', () => {
  test('delivered and read markers move forward and reach every member as receipt events', async () => {
    const { a, b, conv } = await pair();
    const m1 = await send(a, conv.id, 'one');
    const m2 = await send(a, conv.id, 'two');
    let res = await srv.call('POST', `/v1/conversations/${conv.id}/delivered`, { token: b.token, body: { message_id: m2.id } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.delivered_up_to, m2.id);
    assert.equal(res.json.read_up_to, null);
    // Backwards: stays, and tells nobody.
    res = await srv.call('POST', `/v1/conversations/${conv.id}/delivered`, { token: b.token, body: { message_id: m1.id } });
    assert.equal(res.json.delivered_up_to, m2.id);
    res = await srv.call('POST', `/v1/conversations/${conv.id}/read`, { token: b.token, body: { message_id: m1.id } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.read_up_to, m1.id);
    for (const who of [a, b]) {
      const evs = (await eventsOf(who, 'receipt')).map((e) => [e.conversation_id, e.user_id, e.delivered_up_to, e.read_up_to]);
      assert.deepEqual(evs, [[conv.id, b.user.id, m2.id, null], [conv.id, b.user.id, m2.id, m1.id]]);
    }
    const c = await conversation(a, conv.id);
    const mb = c.members.find((x) => (x.user ? x.user.id : x.id) === b.user.id);
    assert.equal(mb.read_up_to, m1.id);
    assert.equal(mb.delivered_up_to, m2.id);
    const ma = c.members.find((x) => (x.user ? x.user.id : x.id) === a.user.id);
    assert.equal(ma.read_up_to, null);
    // Reading past the delivered marker moves it too.
    const m3 = await send(a, conv.id, 'three');
    res = await srv.call('POST', `/v1/conversations/${conv.id}/read`, { token: b.token, body: { message_id: m3.id } });
    const last = (await eventsOf(a, 'receipt')).pop();
    assert.deepEqual([last.delivered_up_to, last.read_up_to], [m3.id, m3.id]);
  });

  test('in a group a receipt reaches the member and the senders of what it passed, not everyone', async () => {
    const [a, b, c, d] = await Promise.all([register(srv), register(srv), register(srv), register(srv)]);
    for (const x of [b, c, d]) await befriend(srv, a, x);
    const res = await srv.call('POST', '/v1/conversations', {
      token: a.token, body: { type: 'group', title: 'Receipts', member_ids: [b.user.id, c.user.id, d.user.id] },
    });
    assert.equal(res.status, 201, res.text);
    const g = res.json.conversation;
    const receipts = async (who) => (await eventsOf(who, 'receipt')).map((e) => [e.user_id, e.delivered_up_to, e.read_up_to]);
    const m1 = await send(a, g.id, 'from a');
    let r = await srv.call('POST', `/v1/conversations/${g.id}/delivered`, { token: b.token, body: { message_id: m1.id } });
    assert.equal(r.status, 200, r.text);
    // b's devices and a, whose message it passed; c and d have nothing to show for it.
    assert.deepEqual(await receipts(b), [[b.user.id, m1.id, null]]);
    assert.deepEqual(await receipts(a), [[b.user.id, m1.id, null]]);
    assert.deepEqual(await receipts(c), []);
    assert.deepEqual(await receipts(d), []);
    // Reading past messages of a and c tells both (and b), still not d.
    const m2 = await send(c, g.id, 'from c');
    r = await srv.call('POST', `/v1/conversations/${g.id}/read`, { token: b.token, body: { message_id: m2.id } });
    assert.equal(r.status, 200, r.text);
    for (const who of [a, b, c]) assert.deepEqual((await receipts(who)).pop(), [b.user.id, m2.id, m2.id]);
    assert.deepEqual(await receipts(d), []);
    // d's own receipt goes to d and to the senders: a and c.
    r = await srv.call('POST', `/v1/conversations/${g.id}/delivered`, { token: d.token, body: { message_id: m2.id } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await receipts(d), [[d.user.id, m2.id, null]]);
    for (const who of [a, c]) assert.deepEqual((await receipts(who)).pop(), [d.user.id, m2.id, null]);
    assert.equal((await receipts(b)).length, 2);
    // The conversation still says where every member's markers are.
    const conv = await conversation(c, g.id);
    const mk = (u) => conv.members.find((x) => (x.user ? x.user.id : x.id) === u.user.id);
    assert.deepEqual([mk(b).delivered_up_to, mk(b).read_up_to, mk(d).delivered_up_to], [m2.id, m2.id, m2.id]);
  });

  test('a receipt past more than 64 senders goes to every member', async () => {
    // The bound on whom a receipt looks for: past it, the old fan-out to all.
    const owner = await register(srv);
    const reader = await register(srv);
    const idle = await register(srv);
    const senders = [];
    for (let i = 0; i < 65; i++) senders.push(await register(srv));
    for (const x of [reader, idle, ...senders]) await befriend(srv, owner, x);
    const res = await srv.call('POST', '/v1/conversations', {
      token: owner.token,
      body: { type: 'group', title: 'Many', member_ids: [reader, idle, ...senders].map((x) => x.user.id) },
    });
    assert.equal(res.status, 201, res.text);
    const g = res.json.conversation;
    let last;
    for (const x of senders) last = await send(x, g.id, 'hello all');
    let r = await srv.call('POST', `/v1/conversations/${g.id}/delivered`, { token: reader.token, body: { message_id: last.id } });
    assert.equal(r.status, 200, r.text);
    for (const who of [idle, owner, senders[0], senders[64], reader]) {
      assert.deepEqual((await eventsOf(who, 'receipt')).map((e) => [e.user_id, e.delivered_up_to]), [[reader.user.id, last.id]]);
    }
    // Within the bound again (one sender passed), only that sender and the reader hear.
    const next = await send(senders[3], g.id, 'one more');
    r = await srv.call('POST', `/v1/conversations/${g.id}/delivered`, { token: reader.token, body: { message_id: next.id } });
    assert.equal(r.status, 200, r.text);
    assert.equal((await eventsOf(senders[3], 'receipt')).length, 2);
    assert.equal((await eventsOf(reader, 'receipt')).length, 2);
    assert.equal((await eventsOf(idle, 'receipt')).length, 1);
  });

  test('errors: not a message of the conversation 400, not a member 403, unknown 404', async () => {
    const { a, conv } = await pair();
    const other = await pair();
    const foreign = await send(other.a, other.conv.id, 'elsewhere');
    const post = (who, convId, body) => srv.call('POST', `/v1/conversations/${convId}/delivered`, { token: who.token, body });
    expectError(assert, await post(a, conv.id, { message_id: foreign.id }), 400, 'invalid_request');
    expectError(assert, await post(a, conv.id, {}), 400, 'invalid_request');
    expectError(assert, await post(a, other.conv.id, { message_id: foreign.id }), 403, 'not_member');
    expectError(assert, await post(a, '123456789', { message_id: foreign.id }), 404, 'not_found');
    assert.equal((await eventsOf(a, 'receipt')).length, 0);
  });
});

describe('privacy: direct_chat_from', () => {
  test('"everyone" lets strangers open a direct chat; blocks still win; "contacts" closes it again', async () => {
    const a = await register(srv);
    const stranger = await register(srv);
    let res = await srv.call('GET', '/v1/me/settings', { token: a.token });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { settings: { direct_chat_from: 'contacts' } });
    const open = (who, other) => srv.call('POST', '/v1/conversations', { token: who.token, body: { type: 'direct', user_id: other.user.id } });
    expectError(assert, await open(stranger, a), 403, 'not_contacts');
    res = await srv.call('PATCH', '/v1/me/settings', { token: a.token, body: { direct_chat_from: 'everyone' } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { settings: { direct_chat_from: 'everyone' } });
    assert.deepEqual((await srv.call('GET', '/v1/me/settings', { token: a.token })).json.settings, { direct_chat_from: 'everyone' });
    // The setting is a's: a still may not write to strangers who keep the default.
    expectError(assert, await open(a, stranger), 403, 'not_contacts');
    const blocker = await register(srv);
    assert.equal((await srv.call('POST', '/v1/blocks', { token: a.token, body: { user_id: blocker.user.id } })).status, 201);
    expectError(assert, await open(blocker, a), 403, 'blocked');
    res = await open(stranger, a);
    assert.equal(res.status, 201, res.text);
    const m = await send(stranger, res.json.conversation.id, 'hello from a stranger');
    assert.equal(m.text, 'hello from a stranger');
    assert.equal((await srv.call('PATCH', '/v1/me/settings', { token: a.token, body: { direct_chat_from: 'contacts' } })).status, 200);
    const late = await register(srv);
    expectError(assert, await open(late, a), 403, 'not_contacts');
  });

  test('bad settings are 400 and change nothing', async () => {
    const a = await register(srv);
    const patch = (body) => srv.call('PATCH', '/v1/me/settings', { token: a.token, body });
    expectError(assert, await patch({ direct_chat_from: 'friends' }), 400, 'invalid_request');
    expectError(assert, await patch({ direct_chat_from: 1 }), 400, 'invalid_request');
    expectError(assert, await patch({}), 400, 'invalid_request');
    expectError(assert, await srv.call('PATCH', '/v1/me/settings', { token: a.token, raw: '{' }), 400, 'malformed_json');
    expectError(assert, await srv.call('GET', '/v1/me/settings'), 401, 'unauthorized');
    assert.deepEqual((await srv.call('GET', '/v1/me/settings', { token: a.token })).json.settings, { direct_chat_from: 'contacts' });
  });
});

describe('search', () => {
  test('full text over my conversations, newest first, prefix of the last word, kept in step with edits', async () => {
    const { a, b, conv } = await pair();
    const other = await pair();
    const m1 = await send(a, conv.id, 'The quick brown fox');
    const m2 = await send(b, conv.id, 'a quicker café visit');
    await send(other.a, other.conv.id, 'quick fox elsewhere');
    assert.deepEqual(await searchIds(a, 'quick'), [m2.id, m1.id]);
    assert.deepEqual(await searchIds(a, 'QUICK fox'), [m1.id]);
    assert.deepEqual(await searchIds(b, 'cafe'), [m2.id]);
    assert.deepEqual(await searchIds(a, 'quick', `&conversation_id=${conv.id}&limit=1`), [m2.id]);
    const res = await search(a, 'q=fox');
    assert.equal(res.json.messages[0].text, 'The quick brown fox');
    assert.equal((await edit(a, conv.id, m1.id, { text: 'the slow green turtle' })).status, 200);
    assert.deepEqual(await searchIds(a, 'fox'), []);
    assert.deepEqual(await searchIds(a, 'turtle'), [m1.id]);
  });

  test('any text is a query, never a syntax error', async () => {
    const { a, conv } = await pair();
    const m = await send(a, conv.id, 'say "hello" (to) AND everyone*');
    for (const q of ['"', '""', '"hello', 'hello"', '*', 'AND', 'OR NOT', '(', ')', 'NEAR(a b)', '-x', 'a:b',
      'text:hello', '^hello', '{a b}', '\'', '\\', '+', 'hello AND', '"hello" OR "to"', '😀', '中文', '\u00a0']) {
      const res = await search(a, `q=${encodeURIComponent(q)}`);
      assert.equal(res.status, 200, `${q}: ${res.text}`);
    }
    assert.deepEqual(await searchIds(a, '"hello"'), [m.id]);
    assert.deepEqual(await searchIds(a, 'AND everyone'), [m.id]);
  });

  test('errors: no q, blank q, too long, bad conversation, not a member', async () => {
    const { a } = await pair();
    const other = await pair();
    expectError(assert, await search(a, ''), 400, 'invalid_request');
    expectError(assert, await search(a, 'q=%20%20'), 400, 'invalid_request');
    expectError(assert, await search(a, `q=${'x'.repeat(257)}`), 400, 'invalid_request');
    expectError(assert, await search(a, 'q=x&conversation_id=abc'), 400, 'invalid_request');
    expectError(assert, await search(a, 'q=x&limit=0'), 400, 'invalid_request');
    expectError(assert, await search(a, `q=x&conversation_id=${other.conv.id}`), 403, 'not_member');
    expectError(assert, await search(a, 'q=x&conversation_id=123456789'), 404, 'not_found');
    expectError(assert, await srv.call('GET', '/v1/search/messages?q=x'), 401, 'unauthorized');
  });
});

/** A socket said hello and got ready. */
async function connect(who) {
  const c = openWs(srv);
  await c.opened;
  c.send({ type: 'hello', token: who.token, since: 1000000 });
  const first = await c.next();
  assert.equal(first.type, 'ready', JSON.stringify(first));
  return c;
}

/** Frames until the pong of a ping: everything the socket had queued. */
async function drain(c) {
  c.send({ type: 'ping' });
  const out = [];
  for (;;) {
    const f = await c.next();
    if (f.type === 'pong') return out;
    out.push(f);
  }
}

/** The next frame that passes keep; fails after 10 s. */
async function frame(c, keep) {
  const deadline = Date.now() + 10000;
  for (;;) {
    let timer;
    const timeout = new Promise((r) => { timer = setTimeout(r, Math.max(deadline - Date.now(), 0), null); });
    const f = await Promise.race([c.next(), timeout]);
    clearTimeout(timer);
    assert.ok(f, 'no such frame within 10 s');
    if (keep(f)) return f;
  }
}

const close = async (c) => { c.ws.close(1000); await c.closed; };

describe('typing and delivered frames', () => {
  test('typing reaches the other member once per 2 s, without seq; non-members get an error', async () => {
    const { a, b, conv } = await pair();
    const ca = await connect(a);
    const cb = await connect(b);
    ca.send({ type: 'typing', conversation_id: conv.id });
    const t = await frame(cb, (f) => f.type === 'typing');
    assert.deepEqual(t, { type: 'typing', conversation_id: conv.id, user_id: a.user.id });
    ca.send({ type: 'typing', conversation_id: conv.id }); // within 2 s: dropped
    // The sender's own socket hears no typing; a's frames are all handled once its pong came.
    assert.deepEqual((await drain(ca)).filter((f) => f.type === 'typing' || f.type === 'error'), []);
    assert.deepEqual((await drain(cb)).filter((f) => f.type === 'typing'), []);
    const stranger = await register(srv);
    const cs = await connect(stranger);
    cs.send({ type: 'typing', conversation_id: conv.id });
    const err = await frame(cs, (f) => f.type === 'error');
    assert.equal(err.code, 'not_member');
    cs.send({ type: 'typing', conversation_id: 'nope' });
    assert.equal((await frame(cs, (f) => f.type === 'error')).code, 'invalid_request');
    assert.deepEqual((await drain(cb)).filter((f) => f.type === 'typing'), []);
    await Promise.all([ca, cb, cs].map(close));
  });

  test('a delivered frame moves the marker: the receipt event comes back', async () => {
    const { a, b, conv } = await pair();
    const m = await send(a, conv.id, 'got it?');
    const cb = await connect(b);
    cb.send({ type: 'delivered', conversation_id: conv.id, message_id: m.id });
    const ev = await frame(cb, (f) => f.type === 'receipt');
    assert.equal(ev.user_id, b.user.id);
    assert.equal(ev.delivered_up_to, m.id);
    assert.ok(ev.seq > 0);
    cb.send({ type: 'delivered', conversation_id: conv.id, message_id: '123456789' });
    assert.equal((await frame(cb, (f) => f.type === 'error')).code, 'invalid_request');
    await close(cb);
  });
});

describe('presence', () => {
  test('contacts see a user come online with the first socket and go offline with the last', async () => {
    const { a, b } = await pair();
    const cb = await connect(b);
    await drain(cb);
    const ca1 = await connect(a);
    assert.deepEqual(await frame(cb, (f) => f.type === 'presence'), { type: 'presence', user_id: a.user.id, online: true });
    const ca2 = await connect(a);
    await close(ca1);
    let res = await srv.call('GET', `/v1/presence?user_ids=${a.user.id}`, { token: b.token });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.presence[0].online, true);
    await close(ca2);
    // The last socket went: offline, and the earlier frames said online.
    const p = await frame(cb, (f) => f.type === 'presence' && f.online === false);
    assert.equal(p.user_id, a.user.id);
    res = await srv.call('GET', `/v1/presence?user_ids=${a.user.id}`, { token: b.token });
    assert.equal(res.json.presence[0].online, false);
    assert.match(res.json.presence[0].last_seen_at, /^\d{4}-/);
    await close(cb);
  });

  test('GET /v1/presence tells about contacts only; bad ids are 400', async () => {
    const { a, b } = await pair();
    const stranger = await register(srv);
    const cs = await connect(stranger);
    const res = await srv.call('GET', `/v1/presence?user_ids=${b.user.id},${stranger.user.id},${b.user.id}`, { token: a.token });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.presence.map((p) => [p.user_id, p.online]), [[b.user.id, false]]);
    expectError(assert, await srv.call('GET', '/v1/presence', { token: a.token }), 400, 'invalid_request');
    expectError(assert, await srv.call('GET', '/v1/presence?user_ids=1,,2', { token: a.token }), 400, 'invalid_request');
    expectError(assert, await srv.call('GET', '/v1/presence?user_ids=x', { token: a.token }), 400, 'invalid_request');
    const many = Array.from({ length: 101 }, (_, i) => String(1000 + i)).join(',');
    expectError(assert, await srv.call('GET', `/v1/presence?user_ids=${many}`, { token: a.token }), 400, 'invalid_request');
    await close(cs);
  });
});
