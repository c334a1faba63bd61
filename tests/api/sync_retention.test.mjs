// Event retention: events older than the server keeps leave the streams; a device that asks for them is told to
// reload (410 on /v1/sync, a reset frame on the WebSocket), and the stream goes on gap-free from its end.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openWs, register, startServer } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function chatPair(s) {
  const a = await register(s);
  const b = await register(s);
  const req = await s.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
  assert.equal((await s.call('POST', `/v1/contacts/requests/${req.json.request.id}/accept`, { token: b.token })).status, 200);
  const conv = (await s.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.user.id } })).json.conversation;
  return { a, b, conv };
}

async function send(s, who, conv, clientId) {
  const res = await s.call('POST', `/v1/conversations/${conv.id}/messages`, { token: who.token, body: { client_id: clientId, text: clientId } });
  assert.equal(res.status, 201, res.text);
  return res.json.message;
}

test('events past their retention leave the stream; a device behind them reloads, one that is current misses nothing', { timeout: 60000 }, async () => {
  // 30 days in production; 1.5 s here, so that the sweep can be seen.
  const s = await startServer({ env: { PLAZA_TEST_EVENT_RETENTION_MS: '1500' } });
  try {
    const { a, b, conv } = await chatPair(s);
    for (let i = 0; i < 5; i++) await send(s, a, conv, `old-${i}`);
    const all = await s.call('GET', '/v1/sync?since=0', { token: b.token });
    assert.equal(all.status, 200);
    const head = all.json.next_since;
    assert.ok(all.json.events.filter((e) => e.type === 'message.new').length === 5);

    // Once the sweep has run, since=0 asks for what is gone.
    const deadline = Date.now() + 20000;
    let gone;
    for (;;) {
      gone = await s.call('GET', '/v1/sync?since=0', { token: b.token });
      if (gone.status === 410) break;
      assert.equal(gone.status, 200, gone.text);
      assert.ok(Date.now() < deadline, 'the old events are still there after 20 s');
      await sleep(200);
    }
    assert.equal(gone.json.error.code, 'events_expired');
    assert.match(gone.json.error.message, /reload/);
    assert.equal(gone.json.next_since, head);
    // The last event stays: a device that saw all but it gets it, one
    // that saw everything gets nothing, and no seq is used twice.
    const last = await s.call('GET', `/v1/sync?since=${head - 1}`, { token: b.token });
    assert.equal(last.status, 200, last.text);
    assert.deepEqual(last.json.events.map((e) => e.seq), [head]);
    assert.equal((await s.call('GET', `/v1/sync?since=${head - 2}`, { token: b.token })).status, 410);
    const current = await s.call('GET', `/v1/sync?since=${head}`, { token: b.token });
    assert.deepEqual([current.status, current.json.events], [200, []]);
    const fresh = await send(s, a, conv, 'new-1');
    const next = await s.call('GET', `/v1/sync?since=${head}`, { token: b.token });
    assert.deepEqual(next.json.events.map((e) => [e.seq, e.message?.id]), [[head + 1, fresh.id]]);
    // History is not events: every message is still there.
    const hist = await s.call('GET', `/v1/conversations/${conv.id}/messages?limit=50`, { token: b.token });
    assert.deepEqual(hist.json.messages.map((m) => m.text).reverse(), ['old-0', 'old-1', 'old-2', 'old-3', 'old-4', 'new-1']);

    // A WebSocket from since=0: ready, a reset frame (no seq) saying that
    // the stream goes on from its end, as at a first start (the device
    // reloads its lists), then what comes after, live.
    const end = (await s.call('GET', '/v1/sync?since=0', { token: b.token })).json.next_since;
    assert.ok(end >= head + 1);
    const ws = openWs(s);
    await ws.opened;
    ws.send({ type: 'hello', token: b.token, since: 0 });
    assert.equal((await ws.next()).type, 'ready');
    assert.deepEqual(await ws.next(), { type: 'reset', next_since: end });
    const live = await send(s, a, conv, 'new-2');
    const pushed = await ws.next();
    assert.deepEqual([pushed.seq, pushed.type, pushed.message.id], [end + 1, 'message.new', live.id]);
    ws.ws.close();
    // A WebSocket from where the device is: no reset.
    const ws2 = openWs(s);
    await ws2.opened;
    ws2.send({ type: 'hello', token: b.token, since: end });
    assert.equal((await ws2.next()).type, 'ready');
    const after = await ws2.next();
    assert.deepEqual([after.type, after.seq], ['message.new', end + 1]);
    ws2.ws.close();

    const metrics = await (await fetch(s.url('/metrics'))).text();
    const pruned = Number(/plaza_events_pruned_total (\d+)/.exec(metrics)?.[1]);
    assert.ok(pruned > 0, metrics);
  } finally {
    await s.stop();
  }
});

test('a retention shorter than a week is refused: a device offline for a week must catch up', async () => {
  await assert.rejects(startServer({ env: { PLAZA_EVENT_RETENTION_DAYS: '3' } }), /at least 7/);
  const s = await startServer({ env: { PLAZA_EVENT_RETENTION_DAYS: '0' } });
  await s.stop();
});
