// Durability of messaging: every message acknowledged before kill -9 or SIGTERM is in history and sync after restart, and retries by client_id never duplicate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openWs, register, startServer } from './lib.mjs';

test('a stream of sends cut by kill -9: acknowledged messages survive, retries make no duplicates', { timeout: 120000 }, async () => {
  const srv = await startServer();
  let srv2;
  try {
    const a = await register(srv);
    const b = await register(srv);
    const r = await srv.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
    await srv.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token });
    const conv = (await srv.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.user.id } })).json.conversation;

    // 40 sends in flight at once (under the burst of the rate limit); the
    // kill comes once 15 of them are acknowledged, with the rest in flight.
    const acked = new Map();
    let killing = null;
    const N = 40;
    const attempts = Array.from({ length: N }, (_, i) => srv.call('POST', `/v1/conversations/${conv.id}/messages`, {
      token: a.token, body: { client_id: `d${i}`, text: `durable ${i}` },
    }).then((res) => {
      if (killing) return; // answered after the kill was sent: not counted either way
      assert.equal(res.status, 201, res.text);
      acked.set(`d${i}`, res.json.message);
      if (acked.size >= 15) killing = srv.kill9();
    }, () => { /* cut off by the kill */ }));
    await Promise.all(attempts);
    await (killing ?? srv.kill9());
    assert.ok(acked.size >= 15, `only ${acked.size} sends were acknowledged`);

    srv2 = await startServer({ dataDir: srv.dir });
    const hist = (await srv2.call('GET', `/v1/conversations/${conv.id}/messages?limit=200`, { token: b.token })).json.messages;
    const byClient = new Map(hist.map((m) => [m.client_id, m]));
    for (const [cid, m] of acked) assert.deepEqual(byClient.get(cid), m, `${cid} was acknowledged but is gone`);
    const events = (await srv2.call('GET', '/v1/sync?since=0&limit=1000', { token: b.token })).json.events;
    const evIds = events.filter((e) => e.type === 'message.new').map((e) => e.message.id);
    assert.deepEqual(evIds, [...hist].reverse().map((m) => m.id), 'sync and history disagree');
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));

    // Resend everything: acknowledged ones come back as they were (200),
    // the others are stored now (201) or were stored without their answer (200).
    for (let i = 0; i < N; i++) {
      const res = await srv2.call('POST', `/v1/conversations/${conv.id}/messages`, {
        token: a.token, body: { client_id: `d${i}`, text: `durable ${i}` },
      });
      assert.ok(res.status === 200 || res.status === 201, res.text);
      if (acked.has(`d${i}`)) {
        assert.equal(res.status, 200);
        assert.deepEqual(res.json.message, acked.get(`d${i}`));
      }
      if (byClient.has(`d${i}`)) assert.equal(res.json.message.id, byClient.get(`d${i}`).id);
    }
    const after = (await srv2.call('GET', `/v1/conversations/${conv.id}/messages?limit=200`, { token: b.token })).json.messages;
    assert.equal(after.length, N);
    assert.deepEqual(after.map((m) => m.client_id).sort(), Array.from({ length: N }, (_, i) => `d${i}`).sort());
  } finally {
    await srv2?.stop(); // first: srv.stop() removes the shared data directory
    await srv.stop();
  }
});

test('a stream of HTTP and WebSocket sends cut by SIGTERM: plazad exits 0, acknowledged messages survive, retries make no duplicates', { timeout: 120000 }, async () => {
  const srv = await startServer();
  let srv2;
  try {
    const a = await register(srv);
    const b = await register(srv);
    const r = await srv.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
    await srv.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token });
    const conv = (await srv.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.user.id } })).json.conversation;

    const ws = openWs(srv);
    await ws.opened;
    ws.send({ type: 'hello', token: a.token, since: 0 });
    for (;;) if ((await ws.next()).type === 'ready') break;

    // 20 sends over HTTP and 20 over the socket, all in flight at once; the
    // graceful stop comes once 10 of them are acknowledged.
    const acked = new Map();
    let stopping = null;
    const N = 20;
    const ack = (cid, message) => {
      if (stopping) return; // answered after the stop began: not counted either way
      acked.set(cid, message);
      if (acked.size >= 10) stopping = srv.stop({ keepData: true }); // throws unless plazad exits 0
    };
    // Frames queued before the close come first: next() of a queued frame
    // is already settled, and race() takes the first settled in order.
    const closedMark = ws.closed.then(() => null);
    const wsAcks = (async () => {
      for (;;) {
        const f = await Promise.race([ws.next(), closedMark]);
        if (f === null) return;
        if (f.type === 'ack') ack(f.client_id, f.message);
      }
    })();
    for (let i = 0; i < N; i++) ws.send({ type: 'send', conversation_id: conv.id, client_id: `w${i}`, text: `socket ${i}` });
    const http = Array.from({ length: N }, (_, i) => srv.call('POST', `/v1/conversations/${conv.id}/messages`, {
      token: a.token, body: { client_id: `h${i}`, text: `http ${i}` },
    }).then((res) => { if (res.status === 201) ack(`h${i}`, res.json.message); }, () => { /* refused or cut off by the stop */ }));
    await Promise.all(http);
    await (stopping ?? srv.stop({ keepData: true }));
    assert.equal((await ws.closed).code, 1001, 'a graceful stop closes sockets with 1001');
    await wsAcks;
    assert.ok(acked.size >= 10, `only ${acked.size} sends were acknowledged`);

    srv2 = await startServer({ dataDir: srv.dir });
    const hist = (await srv2.call('GET', `/v1/conversations/${conv.id}/messages?limit=200`, { token: b.token })).json.messages;
    const byClient = new Map(hist.map((m) => [m.client_id, m]));
    for (const [cid, m] of acked) assert.deepEqual(byClient.get(cid), m, `${cid} was acknowledged but is gone`);

    const all = [...Array.from({ length: N }, (_, i) => [`w${i}`, `socket ${i}`]), ...Array.from({ length: N }, (_, i) => [`h${i}`, `http ${i}`])];
    for (const [cid, text] of all) {
      const res = await srv2.call('POST', `/v1/conversations/${conv.id}/messages`, { token: a.token, body: { client_id: cid, text } });
      assert.ok(res.status === 200 || res.status === 201, res.text);
      if (acked.has(cid)) assert.deepEqual(res.json.message, acked.get(cid));
    }
    const after = (await srv2.call('GET', `/v1/conversations/${conv.id}/messages?limit=200`, { token: b.token })).json.messages;
    assert.deepEqual(after.map((m) => m.client_id).sort(), all.map(([cid]) => cid).sort(), 'each client_id exactly once');
  } finally {
    await srv2?.stop();
    await srv.stop();
  }
});
