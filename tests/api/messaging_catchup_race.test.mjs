// The catch-up of a socket whose since lies beyond its stream: events committed between its registration and its first read are delivered.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openWs, register, startServer } from './lib.mjs';

// Each catch-up read waits 700 ms first (a test-only setting), so the
// message below always commits after the socket registered and before the
// read's snapshot: the window that, under load, used to lose events.
let srv;
before(async () => { srv = await startServer({ env: { PLAZA_TEST_CATCHUP_DELAY_MS: '700' } }); });
after(async () => { await srv?.stop(); });

async function pair() {
  const a = await register(srv);
  const b = await register(srv);
  const r = await srv.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
  assert.equal(r.status, 201, r.text);
  assert.equal((await srv.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token })).status, 200);
  const res = await srv.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.user.id } });
  assert.equal(res.status, 201, res.text);
  return { a, b, conv: res.json.conversation };
}

async function nextEvent(c, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    let timer;
    const timeout = new Promise((r) => { timer = setTimeout(r, Math.max(deadline - Date.now(), 0), null); });
    const f = await Promise.race([c.next(), timeout]);
    clearTimeout(timer);
    if (f === null || f.seq !== undefined) return f;
  }
}

for (const since of [1000000, Number.MAX_SAFE_INTEGER]) {
  test(`hello with since ${since}: a message sent right after ready arrives once`, async () => {
    const { a, b, conv } = await pair();
    const c = openWs(srv);
    await c.opened;
    c.send({ type: 'hello', token: b.token, since });
    assert.equal((await c.next()).type, 'ready');
    const res = await srv.call('POST', `/v1/conversations/${conv.id}/messages`, {
      token: a.token, body: { client_id: 'race-1', text: 'sent during the catch-up' },
    });
    assert.equal(res.status, 201, res.text);
    const ev = await nextEvent(c, 15000);
    assert.ok(ev, 'the message committed during the catch-up never arrived');
    assert.equal(ev.type, 'message.new');
    assert.equal(ev.message.id, res.json.message.id);
    // Exactly once: nothing else with a seq follows.
    c.send({ type: 'ping' });
    for (;;) {
      const f = await c.next();
      if (f.type === 'pong') break;
      assert.equal(f.seq, undefined, `a second event arrived: ${JSON.stringify(f)}`);
    }
    c.ws.close(1000);
    await c.closed;
  });
}
