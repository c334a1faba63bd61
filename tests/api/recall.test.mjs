// API tests of recall and the event streams: what a sender took back is gone from every stored event, over sync and WebSocket catch-up.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { openWs, register, startServer } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

/** Words no other request of the run can contain. */
const secret = (label) => `${label}${randomBytes(6).toString('hex')}`;

async function befriend(a, b) {
  const r = await srv.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
  assert.equal(r.status, 201, r.text);
  const ok = await srv.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token });
  assert.equal(ok.status, 200, ok.text);
}

/** a, b and c, contacts of a, with the direct chat of a and b and a group of all three. */
async function setUp() {
  const [a, b, c] = [await register(srv), await register(srv), await register(srv)];
  await befriend(a, b);
  await befriend(a, c);
  const direct = await srv.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.user.id } });
  assert.equal(direct.status, 201, direct.text);
  const group = await srv.call('POST', '/v1/conversations', {
    token: a.token, body: { type: 'group', title: 'recall', member_ids: [b.user.id, c.user.id] },
  });
  assert.equal(group.status, 201, group.text);
  return { a, b, c, direct: direct.json.conversation, group: group.json.conversation };
}

let n = 0;
async function send(who, convId, text) {
  n += 1;
  const res = await srv.call('POST', `/v1/conversations/${convId}/messages`, {
    token: who.token, body: { client_id: `recall-${n}`, text },
  });
  assert.equal(res.status, 201, res.text);
  return res.json.message;
}

const msgPath = (convId, msgId, rest = '') => `/v1/conversations/${convId}/messages/${msgId}${rest}`;

/** who's whole stream over GET /v1/sync: the raw answer and its events. */
async function syncAll(who) {
  const res = await srv.call('GET', '/v1/sync?since=0&limit=1000', { token: who.token });
  assert.equal(res.status, 200, res.text);
  return { raw: res.text, events: res.json.events };
}

/** who's whole stream over a fresh WebSocket (hello since 0): the raw frames and the events among them. */
async function catchUp(who, lastSeq) {
  const c = openWs(srv);
  const raw = [];
  c.ws.on('message', (d) => raw.push(d.toString()));
  await c.opened;
  c.send({ type: 'hello', token: who.token, since: 0 });
  const ready = await c.next();
  assert.equal(ready.type, 'ready', JSON.stringify(ready));
  const events = [];
  while (events.length === 0 || events[events.length - 1].seq < lastSeq) {
    const f = await c.next();
    if (f.seq !== undefined) events.push(f);
  }
  // A ping answered means every frame before it arrived: nothing follows.
  c.send({ type: 'ping' });
  for (let f = await c.next(); f.type !== 'pong'; f = await c.next()) {
    if (f.seq !== undefined) events.push(f);
  }
  c.ws.close(1000);
  await c.closed;
  return { raw: raw.join('\n'), events };
}

/** Asserts that stream events (from sync or catch-up) is gap-free from 1. */
function assertGapFree(events) {
  assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
}

describe('recall empties the stored events', () => {
  test('sync and WebSocket catch-up from 0 never return the recalled text, to the sender or a member', async () => {
    const { a, b, direct } = await setUp();
    const words = secret('hush');
    const m = await send(a, direct.id, `the code is ${words}`);
    const kept = await send(b, direct.id, 'a reply that stays');
    const before = {};
    for (const [name, who] of [['a', a], ['b', b]]) {
      const { raw, events } = await syncAll(who);
      assert.ok(raw.includes(words), 'the stream holds the text before the recall');
      before[name] = events.find((e) => e.type === 'message.new' && e.message.id === m.id).seq;
    }

    const res = await srv.call('POST', msgPath(direct.id, m.id, '/recall'), { token: a.token });
    assert.equal(res.status, 200, res.text);
    assert.ok(!res.text.includes(words));

    for (const [name, who] of [['a', a], ['b', b]]) {
      const synced = await syncAll(who);
      const socket = await catchUp(who, synced.events[synced.events.length - 1].seq);
      for (const { raw, events } of [synced, socket]) {
        assert.ok(!raw.includes(words), `${name}'s stream still holds the recalled text: ${raw}`);
        assertGapFree(events);
        // The message.new is where it was, with the message as it is now.
        const ev = events.find((e) => e.seq === before[name]);
        assert.equal(ev.type, 'message.new');
        assert.equal(ev.message.id, m.id);
        assert.equal(ev.message.recalled, true);
        assert.equal(ev.message.text, null);
        assert.ok(!('body' in ev.message));
        const recalled = events.filter((e) => e.type === 'message.recalled');
        assert.equal(recalled.length, 1);
        assert.ok(recalled[0].seq > before[name]);
        assert.equal(recalled[0].message.id, m.id);
        // Other messages keep what they said.
        const other = events.find((e) => e.type === 'message.new' && e.message.id === kept.id);
        assert.equal(other.message.text, 'a reply that stays');
        assert.equal(other.message.recalled, false);
      }
      assert.deepEqual(socket.events, synced.events);
    }

    for (const who of [a, b]) {
      const found = await srv.call('GET', `/v1/search/messages?q=${words}`, { token: who.token });
      assert.equal(found.status, 200, found.text);
      assert.deepEqual(found.json.messages, []);
      const list = await srv.call('GET', '/v1/conversations', { token: who.token });
      assert.equal(list.status, 200, list.text);
      assert.ok(!list.text.includes(words));
      const history = await srv.call('GET', `/v1/conversations/${direct.id}/messages`, { token: who.token });
      assert.ok(!history.text.includes(words));
    }
  });

  test('an edited message: neither the first nor the edited text survives; the last message preview is recalled', async () => {
    const { a, b, c, group } = await setUp();
    const first = secret('draft');
    const second = secret('final');
    const m = await send(a, group.id, `meet at ${first}`);
    const ed = await srv.call('PATCH', msgPath(group.id, m.id), { token: a.token, body: { text: `meet at ${second}` } });
    assert.equal(ed.status, 200, ed.text);
    const res = await srv.call('POST', msgPath(group.id, m.id, '/recall'), { token: a.token });
    assert.equal(res.status, 200, res.text);

    for (const who of [a, b, c]) {
      const synced = await syncAll(who);
      const socket = await catchUp(who, synced.events[synced.events.length - 1].seq);
      for (const { raw, events } of [synced, socket]) {
        assert.ok(!raw.includes(first) && !raw.includes(second), raw);
        assertGapFree(events);
        const ofMsg = events.filter((e) => e.message?.id === m.id);
        assert.deepEqual(ofMsg.map((e) => e.type), ['message.new', 'message.edited', 'message.recalled']);
        for (const e of ofMsg) {
          assert.equal(e.message.recalled, true);
          assert.equal(e.message.text, null);
          assert.equal(e.message.sender_id, a.user.id);
          assert.equal(e.message.conversation_id, group.id);
        }
      }
      const list = await srv.call('GET', '/v1/conversations', { token: who.token });
      const conv = list.json.conversations.find((x) => x.id === group.id);
      assert.equal(conv.last_message.id, m.id);
      assert.equal(conv.last_message.recalled, true);
      assert.equal(conv.last_message.text, null);
      for (const q of [first, second]) {
        const found = await srv.call('GET', `/v1/search/messages?q=${q}`, { token: who.token });
        assert.deepEqual(found.json.messages, []);
      }
    }
  });

  test('a recall that is refused rewrites nothing', async () => {
    const { a, b, direct } = await setUp();
    const words = secret('stays');
    const m = await send(a, direct.id, `still here ${words}`);
    const res = await srv.call('POST', msgPath(direct.id, m.id, '/recall'), { token: b.token });
    assert.equal(res.status, 403, res.text);
    for (const who of [a, b]) {
      const { events } = await syncAll(who);
      const ev = events.find((e) => e.type === 'message.new' && e.message.id === m.id);
      assert.equal(ev.message.text, `still here ${words}`);
      assert.equal(ev.message.recalled, false);
    }
  });
});
