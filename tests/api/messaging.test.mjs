// API tests of messaging over HTTP: direct chats and groups, sending, history, retries by client_id, blocks, read markers, sync and the send rate limit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expectError, register, startServer } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

async function befriend(a, b) {
  const r = await srv.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
  assert.equal(r.status, 201, r.text);
  const ok = await srv.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token });
  assert.equal(ok.status, 200, ok.text);
}

const openDirect = (who, other) => srv.call('POST', '/v1/conversations', {
  token: who.token, body: { type: 'direct', user_id: other.user.id },
});
const createGroup = (who, title, members) => srv.call('POST', '/v1/conversations', {
  token: who.token, body: { type: 'group', title, member_ids: members.map((m) => m.user.id) },
});
const send = (who, convId, text, clientId, extra = {}) => srv.call('POST', `/v1/conversations/${convId}/messages`, {
  token: who.token, body: { client_id: clientId, text, ...extra },
});
const history = async (who, convId, query = '') => {
  const res = await srv.call('GET', `/v1/conversations/${convId}/messages${query}`, { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json.messages;
};
const sync = async (who, since = 0, limit) => {
  const q = limit === undefined ? `?since=${since}` : `?since=${since}&limit=${limit}`;
  const res = await srv.call('GET', `/v1/sync${q}`, { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json;
};
const list = async (who) => {
  const res = await srv.call('GET', '/v1/conversations', { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json.conversations;
};

/** Two contacts with their direct chat. */
async function pair() {
  const a = await register(srv);
  const b = await register(srv);
  await befriend(a, b);
  const res = await openDirect(a, b);
  assert.equal(res.status, 201, res.text);
  return { a, b, conv: res.json.conversation };
}

describe('direct chats', () => {
  test('opening twice, from either side, gives the same chat: 201 then 200', async () => {
    const a = await register(srv);
    const b = await register(srv);
    await befriend(a, b);
    const first = await openDirect(a, b);
    assert.equal(first.status, 201);
    const c = first.json.conversation;
    assert.match(c.id, /^[0-9]+$/);
    assert.equal(c.type, 'direct');
    assert.equal(c.title, null);
    assert.deepEqual(c.members.map((m) => m.user.id).sort(), [a.user.id, b.user.id].sort());
    const mb = c.members.find((m) => m.user.id === b.user.id);
    assert.deepEqual(mb.user, b.user);
    assert.equal(mb.role, 'member');
    const again = await openDirect(a, b);
    assert.equal(again.status, 200);
    assert.equal(again.json.conversation.id, c.id);
    const theirs = await openDirect(b, a);
    assert.equal(theirs.status, 200);
    assert.equal(theirs.json.conversation.id, c.id);
    assert.equal((await list(a)).filter((x) => x.id === c.id).length, 1);
  });

  test('only contacts: strangers get 403 not_contacts; oneself 400; unknown user 404', async () => {
    const a = await register(srv);
    const stranger = await register(srv);
    expectError(assert, await openDirect(a, stranger), 403, 'not_contacts');
    expectError(assert, await openDirect(a, a), 400, 'invalid_request');
    const ghost = { user: { id: '123456789' } };
    expectError(assert, await openDirect(a, ghost), 404, 'not_found');
    expectError(assert, await srv.call('POST', '/v1/conversations', { token: a.token, body: { type: 'channel' } }),
      400, 'invalid_request');
    expectError(assert, await srv.call('POST', '/v1/conversations', { body: { type: 'direct', user_id: '1' } }),
      401, 'unauthorized');
    assert.deepEqual(await list(a), []);
  });

  test('a block, either way, is 403 blocked', async () => {
    const a = await register(srv);
    const b = await register(srv);
    await befriend(a, b);
    assert.equal((await srv.call('POST', '/v1/blocks', { token: b.token, body: { user_id: a.user.id } })).status, 201);
    expectError(assert, await openDirect(a, b), 403, 'blocked');
    expectError(assert, await openDirect(b, a), 403, 'blocked');
  });
});

describe('groups', () => {
  test('the creator owns it; members are the creator and the contacts named', async () => {
    const owner = await register(srv);
    const x = await register(srv);
    const y = await register(srv);
    await befriend(owner, x);
    await befriend(y, owner);
    const res = await createGroup(owner, 'Climbing 🧗 club', [x, y, x, owner]);
    assert.equal(res.status, 201, res.text);
    const g = res.json.conversation;
    assert.equal(g.type, 'group');
    assert.equal(g.title, 'Climbing 🧗 club');
    assert.equal(g.owner_id, owner.user.id);
    assert.deepEqual(g.members.map((m) => m.user.id).sort(), [owner.user.id, x.user.id, y.user.id].sort());
    assert.equal(g.members.find((m) => m.user.id === owner.user.id).role, 'owner');
    assert.equal(g.members.find((m) => m.user.id === x.user.id).role, 'member');
    // Every member sees it, and got a conversation.new event.
    for (const who of [owner, x, y]) {
      assert.ok((await list(who)).some((c) => c.id === g.id));
      const ev = (await sync(who)).events.filter((e) => e.type === 'conversation.new');
      assert.equal(ev.length, 1);
      assert.equal(ev[0].conversation.id, g.id);
      assert.equal(ev[0].conversation.members.length, 3);
    }
  });

  test('non-contacts, bad titles, no members, too many members: refused, nothing created', async () => {
    const owner = await register(srv);
    const friend = await register(srv);
    const stranger = await register(srv);
    await befriend(owner, friend);
    expectError(assert, await createGroup(owner, 'T', [friend, stranger]), 403, 'not_contacts');
    expectError(assert, await createGroup(owner, '', [friend]), 400, 'invalid_request');
    expectError(assert, await createGroup(owner, '   ', [friend]), 400, 'invalid_request');
    expectError(assert, await createGroup(owner, 'x'.repeat(65), [friend]), 400, 'invalid_request');
    assert.equal((await createGroup(owner, '字'.repeat(64), [friend])).status, 201);
    expectError(assert, await createGroup(owner, 'T', []), 400, 'invalid_request');
    expectError(assert, await createGroup(owner, 'T', [owner]), 400, 'invalid_request');
    const many = Array.from({ length: 501 }, (_, i) => ({ user: { id: String(1000 + i) } }));
    expectError(assert, await createGroup(owner, 'T', many), 400, 'invalid_request');
    expectError(assert, await srv.call('POST', '/v1/conversations', {
      token: owner.token, body: { type: 'group', title: 'T', member_ids: [42] },
    }), 400, 'invalid_request');
    assert.equal((await list(owner)).length, 1);
    assert.deepEqual(await list(stranger), []);
  });
});

describe('messages', () => {
  test('send, then history newest first, paged with before', async () => {
    const { a, b, conv } = await pair();
    const sent = [];
    for (let i = 0; i < 7; i++) {
      const who = i % 2 ? b : a;
      const res = await send(who, conv.id, `message ${i}`, `c${i}`);
      assert.equal(res.status, 201, res.text);
      const m = res.json.message;
      assert.equal(m.conversation_id, conv.id);
      assert.equal(m.sender_id, who.user.id);
      assert.equal(m.client_id, `c${i}`);
      assert.equal(m.text, `message ${i}`);
      assert.equal(m.type, 'text');
      assert.equal(m.reply_to, null);
      assert.ok(!Number.isNaN(Date.parse(m.created_at)));
      sent.push(m);
    }
    const all = await history(a, conv.id);
    assert.deepEqual(all, [...sent].reverse());
    assert.deepEqual(await history(b, conv.id), all);
    const page1 = await history(a, conv.id, '?limit=3');
    assert.deepEqual(page1.map((m) => m.text), ['message 6', 'message 5', 'message 4']);
    const page2 = await history(a, conv.id, `?limit=3&before=${page1[2].id}`);
    assert.deepEqual(page2.map((m) => m.text), ['message 3', 'message 2', 'message 1']);
    const page3 = await history(a, conv.id, `?limit=3&before=${page2[2].id}`);
    assert.deepEqual(page3.map((m) => m.text), ['message 0']);
    expectError(assert, await srv.call('GET', `/v1/conversations/${conv.id}/messages?limit=0`, { token: a.token }),
      400, 'invalid_request');
    expectError(assert, await srv.call('GET', `/v1/conversations/${conv.id}/messages?before=x`, { token: a.token }),
      400, 'invalid_request');
  });

  test('the same client_id again: 200 with the first message, stored once, one event', async () => {
    const { a, b, conv } = await pair();
    const first = await send(a, conv.id, 'hello once', 'retry-1');
    assert.equal(first.status, 201);
    const again = await send(a, conv.id, 'hello once', 'retry-1');
    assert.equal(again.status, 200);
    assert.deepEqual(again.json.message, first.json.message);
    // Even with other text, a retry answers with what was stored.
    const other = await send(a, conv.id, 'something else', 'retry-1');
    assert.equal(other.status, 200);
    assert.deepEqual(other.json.message, first.json.message);
    // The other member may use the same client_id: it is per sender.
    assert.equal((await send(b, conv.id, 'mine', 'retry-1')).status, 201);
    const msgs = await history(a, conv.id);
    assert.equal(msgs.filter((m) => m.client_id === 'retry-1' && m.sender_id === a.user.id).length, 1);
    assert.equal(msgs.length, 2);
    const events = (await sync(b)).events.filter((e) => e.type === 'message.new');
    assert.equal(events.filter((e) => e.message.id === first.json.message.id).length, 1);
  });

  test('reply_to must be a message of the same conversation', async () => {
    const { a, b, conv } = await pair();
    const m = (await send(a, conv.id, 'question?', 'q')).json.message;
    const r = await send(b, conv.id, 'answer', 'a', { reply_to: m.id });
    assert.equal(r.status, 201);
    assert.equal(r.json.message.reply_to, m.id);
    const other = await pair();
    const foreign = (await send(other.a, other.conv.id, 'elsewhere', 'e')).json.message;
    expectError(assert, await send(b, conv.id, 'bad', 'b', { reply_to: foreign.id }), 400, 'invalid_request');
    expectError(assert, await send(b, conv.id, 'bad', 'b', { reply_to: 'nope' }), 400, 'invalid_request');
    assert.equal((await history(a, conv.id)).length, 2);
  });

  test('not a member: 403 not_member; no such conversation: 404', async () => {
    const { a, conv } = await pair();
    const outsider = await register(srv);
    expectError(assert, await send(outsider, conv.id, 'let me in', 'x'), 403, 'not_member');
    expectError(assert, await srv.call('GET', `/v1/conversations/${conv.id}/messages`, { token: outsider.token }),
      403, 'not_member');
    const m = (await send(a, conv.id, 'hi', 'h')).json.message;
    expectError(assert, await srv.call('POST', `/v1/conversations/${conv.id}/read`, {
      token: outsider.token, body: { message_id: m.id },
    }), 403, 'not_member');
    expectError(assert, await send(a, '987654321', 'void', 'v'), 404, 'not_found');
    expectError(assert, await send(a, 'abc', 'void', 'v'), 400, 'invalid_request');
    assert.equal((await history(a, conv.id)).length, 1);
  });

  test('text and client_id rules: 400 and nothing stored', async () => {
    const { a, conv } = await pair();
    expectError(assert, await send(a, conv.id, 'x'.repeat(4097), 't1'), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, '', 't2'), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, ' \n\t ', 't3'), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, 'bell\u0007', 't4'), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, 'hi', ''), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, 'hi', 'x'.repeat(65)), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, 'hi', 'é'), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, 'hi', undefined), 400, 'invalid_request');
    // Raw bytes that are not UTF-8 inside the JSON string.
    const raw = Buffer.concat([Buffer.from('{"client_id":"u1","text":"bad '), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    expectError(assert, await srv.call('POST', `/v1/conversations/${conv.id}/messages`, { token: a.token, raw }),
      400, 'invalid_utf8');
    assert.deepEqual(await history(a, conv.id), []);
    // The limits themselves are fine: 4096 code points of 4 bytes each, 64 printable characters.
    const big = '😀'.repeat(4096);
    const ok = await send(a, conv.id, big, '~'.repeat(64));
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.message.text, big);
    assert.equal((await send(a, conv.id, 'two\nlines\tand a tab', 'multi line')).status, 201);
  });

  test('in a direct chat, the user who blocked the sender gets nothing: 403 blocked', async () => {
    const { a, b, conv } = await pair();
    assert.equal((await send(a, conv.id, 'before', 'b1')).status, 201);
    assert.equal((await srv.call('POST', '/v1/blocks', { token: b.token, body: { user_id: a.user.id } })).status, 201);
    expectError(assert, await send(a, conv.id, 'after', 'b2'), 403, 'blocked');
    assert.deepEqual((await history(b, conv.id)).map((m) => m.text), ['before']);
    // A retry of what was accepted before the block still answers with it.
    assert.equal((await send(a, conv.id, 'before', 'b1')).status, 200);
    assert.equal((await srv.call('DELETE', `/v1/blocks/${a.user.id}`, { token: b.token })).status, 204);
    assert.equal((await send(a, conv.id, 'after', 'b2')).status, 201);
  });
});

describe('the conversation list and read markers', () => {
  test('most recent activity first, with the last message and unread counts', async () => {
    const me = await register(srv);
    const x = await register(srv);
    const y = await register(srv);
    await befriend(me, x);
    await befriend(me, y);
    const cx = (await openDirect(me, x)).json.conversation;
    const cy = (await openDirect(me, y)).json.conversation;
    let l = await list(me);
    assert.deepEqual(l.map((c) => c.id), [cy.id, cx.id]);
    assert.equal(l[0].last_message, null);
    assert.equal(l[0].unread_count, 0);
    const m1 = (await send(x, cx.id, 'one', '1')).json.message;
    const m2 = (await send(x, cx.id, 'two', '2')).json.message;
    const m3 = (await send(x, cx.id, 'three', '3')).json.message;
    await send(me, cx.id, 'mine do not count', '4');
    l = await list(me);
    assert.deepEqual(l.map((c) => c.id), [cx.id, cy.id]);
    assert.equal(l[0].last_message.text, 'mine do not count');
    assert.equal(l[0].unread_count, 3);
    assert.equal(l[0].last_read_id, null);
    assert.equal((await list(x))[0].unread_count, 1);

    const read = async (id) => srv.call('POST', `/v1/conversations/${cx.id}/read`, { token: me.token, body: { message_id: id } });
    let r = await read(m2.id);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { conversation_id: cx.id, last_read_id: m2.id, read_up_to: m2.id, unread_count: 1 });
    // The marker never moves back.
    r = await read(m1.id);
    assert.equal(r.status, 200);
    assert.equal(r.json.last_read_id, m2.id);
    assert.equal(r.json.unread_count, 1);
    l = await list(me);
    assert.equal(l[0].unread_count, 1);
    assert.equal(l[0].last_read_id, m2.id);
    r = await read(m3.id);
    assert.equal(r.json.unread_count, 0);
    assert.equal((await list(me))[0].unread_count, 0);
    // Another conversation's message is not a marker here.
    const my = (await send(y, cy.id, 'y', 'y')).json.message;
    expectError(assert, await read(my.id), 400, 'invalid_request');
    // My stream says where I read (for my other devices), once per move.
    const reads = (await sync(me)).events.filter((e) => e.type === 'conversation.read');
    assert.deepEqual(reads.map((e) => e.last_read_id), [m2.id, m3.id]);
    assert.ok(reads.every((e) => e.conversation_id === cx.id));
    assert.equal((await sync(x)).events.filter((e) => e.type === 'conversation.read').length, 0);
  });

  test('pages of the list with limit and next_before', async () => {
    const me = await register(srv);
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const f = await register(srv);
      await befriend(me, f);
      ids.unshift((await openDirect(me, f)).json.conversation.id);
    }
    const p1 = await srv.call('GET', '/v1/conversations?limit=2', { token: me.token });
    assert.deepEqual(p1.json.conversations.map((c) => c.id), ids.slice(0, 2));
    assert.match(p1.json.next_before, /^[0-9]+$/);
    const p2 = await srv.call('GET', `/v1/conversations?limit=2&before=${p1.json.next_before}`, { token: me.token });
    assert.deepEqual(p2.json.conversations.map((c) => c.id), ids.slice(2));
    assert.equal(p2.json.next_before, null);
  });
});

describe('/v1/sync', () => {
  test('since N gives exactly the later events, in order, with next_since', async () => {
    const { a, b, conv } = await pair();
    const s0 = await sync(b);
    assert.equal(s0.events.length, 1); // conversation.new
    assert.equal(s0.events[0].seq, 1);
    assert.equal(s0.events[0].type, 'conversation.new');
    assert.equal(s0.events[0].conversation.id, conv.id);
    assert.equal(s0.next_since, 1);
    const msgs = [];
    for (let i = 0; i < 5; i++) msgs.push((await send(i % 2 ? b : a, conv.id, `m${i}`, `k${i}`)).json.message);
    const all = await sync(b, 0);
    assert.deepEqual(all.events.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
    assert.equal(all.next_since, 6);
    assert.equal(all.has_more, false);
    const later = await sync(b, 3);
    assert.deepEqual(later.events.map((e) => e.seq), [4, 5, 6]);
    assert.deepEqual(later.events.map((e) => e.message.id), msgs.slice(2).map((m) => m.id));
    assert.ok(later.events.every((e) => e.type === 'message.new'));
    assert.deepEqual(later.events[0].message, msgs[2]);
    const page = await sync(b, 1, 2);
    assert.deepEqual(page.events.map((e) => e.seq), [2, 3]);
    assert.equal(page.next_since, 3);
    assert.equal(page.has_more, true);
    const none = await sync(b, 6);
    assert.deepEqual(none.events, []);
    assert.equal(none.next_since, 6);
    const beyond = await sync(b, 100);
    assert.equal(beyond.next_since, 100);
    // The sender's own stream has its messages too, with its own numbering.
    const mine = await sync(a, 0);
    assert.deepEqual(mine.events.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
    expectError(assert, await srv.call('GET', '/v1/sync?since=-1', { token: a.token }), 400, 'invalid_request');
    expectError(assert, await srv.call('GET', '/v1/sync?limit=0', { token: a.token }), 400, 'invalid_request');
    expectError(assert, await srv.call('GET', '/v1/sync'), 401, 'unauthorized');
  });
});

describe('the send rate limit', () => {
  test('a flood gets 429 rate_limited with Retry-After, and nothing refused is stored', async () => {
    const { a, conv } = await pair();
    const results = await Promise.all(Array.from({ length: 120 }, (_, i) => send(a, conv.id, `flood ${i}`, `f${i}`)));
    const ok = results.filter((r) => r.status === 201);
    const limited = results.filter((r) => r.status === 429);
    assert.equal(ok.length + limited.length, 120);
    assert.ok(limited.length > 0, 'no request was limited');
    expectError(assert, limited[0], 429, 'rate_limited');
    assert.ok(Number(limited[0].headers.get('retry-after')) >= 1);
    const stored = await history(a, conv.id, '?limit=200');
    assert.equal(stored.length, ok.length);
  });
});
