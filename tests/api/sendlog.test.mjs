// The send log: a text message is acknowledged and delivered once it is durable in the log, before the database has
// it; kill -9 before the database has it loses nothing, and the log goes round its ring without losing a record.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectError, register, startServer, wsHello } from './lib.mjs';

async function directChat(srv) {
  const a = await register(srv);
  const b = await register(srv);
  const r = await srv.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
  await srv.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token });
  const conv = (await srv.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.user.id } })).json.conversation;
  return { a, b, conv };
}

/**
 * Sends n texts over sock with at most `window` unanswered, each `pad`
 * characters longer than its number; resolves with the acks by client id.
 */
async function sendAll(sock, convId, prefix, n, window, pad = 0) {
  const acks = new Map();
  let sent = 0;
  const sendNext = () => {
    sock.send({ type: 'send', conversation_id: convId, client_id: `${prefix}${sent}`, text: `${prefix} number ${sent} ${'x'.repeat(pad)}`.trim() });
    sent++;
  };
  while (sent < Math.min(window, n)) sendNext();
  while (acks.size < n) {
    const f = await sock.next();
    if (f.type === 'error') throw new Error(`send refused: ${JSON.stringify(f)}`);
    if (f.type !== 'ack') continue;
    acks.set(f.client_id, f.message);
    if (sent < n) sendNext();
  }
  return acks;
}

test('sends are checked against blocks and membership as they are now, between logged sends', { timeout: 60000 }, async () => {
  // The log thread remembers each conversation it checked a send against
  // until a write job commits: every change below is one, and the send
  // right after it must see it.
  const srv = await startServer();
  try {
    const { a, b, conv } = await directChat(srv);
    const send = (who, id, text) => srv.call('POST', `/v1/conversations/${id}/messages`, {
      token: who.token, body: { client_id: `${text}`, text },
    });
    assert.equal((await send(a, conv.id, 'before the block')).status, 201);
    assert.equal((await srv.call('POST', '/v1/blocks', { token: b.token, body: { user_id: a.user.id } })).status, 201);
    expectError(assert, await send(a, conv.id, 'while blocked'), 403, 'blocked');
    assert.equal((await send(b, conv.id, 'the blocker may still write')).status, 201);
    assert.equal((await srv.call('DELETE', `/v1/blocks/${a.user.id}`, { token: b.token })).status, 204);
    assert.equal((await send(a, conv.id, 'after the unblock')).status, 201);

    // A group: a member removed cannot send; one added gets the next message.
    // (The block above ended a and b's contact, so the group has others.)
    const friend = async () => {
      const u = await register(srv);
      const r = await srv.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: u.user.id } });
      await srv.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: u.token });
      return u;
    };
    const c = await friend();
    const d = await friend();
    const made = await srv.call('POST', '/v1/conversations', {
      token: a.token, body: { type: 'group', title: 'memo', member_ids: [c.user.id] },
    });
    assert.equal(made.status, 201, made.text);
    const group = made.json.conversation;
    assert.equal((await send(c, group.id, 'c in the group')).status, 201);
    assert.equal((await srv.call('DELETE', `/v1/conversations/${group.id}/members/${c.user.id}`, { token: a.token })).status, 204);
    expectError(assert, await send(c, group.id, 'c removed'), 403, 'not_member');
    assert.equal((await send(a, group.id, 'before d')).status, 201);
    const added = await srv.call('POST', `/v1/conversations/${group.id}/members`, {
      token: a.token, body: { user_ids: [d.user.id] },
    });
    assert.equal(added.status, 200, added.text);
    assert.equal((await send(a, group.id, 'd is in')).status, 201);
    const sync = await srv.call('GET', '/v1/sync?since=0&limit=1000', { token: d.token });
    const texts = sync.json.events.filter((e) => e.type === 'message.new' && e.message.type === 'text').map((e) => e.message.text);
    assert.deepEqual(texts, ['d is in']);
    const hist = await srv.call('GET', `/v1/conversations/${conv.id}/messages`, { token: a.token });
    assert.deepEqual(hist.json.messages.map((m) => m.text).reverse(),
      ['before the block', 'the blocker may still write', 'after the unblock']);
    // Every accepted send above went through the log.
    assert.match((await srv.call('GET', '/metrics')).text, /^plaza_sendlog_records_total 6$/m);
  } finally {
    await srv.stop();
  }
});

test('messages acknowledged while the database is held back survive kill -9, with the seqs delivered live', { timeout: 120000 }, async () => {
  // The writer waits a minute before it applies logged messages: the kill
  // comes long before, so every message exists only in the send log.
  const srv = await startServer({ env: { PLAZA_TEST_APPLY_DELAY_MS: '60000' } });
  let srv2;
  try {
    const { a, b, conv } = await directChat(srv);
    const sockA = await wsHello(srv, a.token);
    const sockB = await wsHello(srv, b.token);
    assert.equal(sockA.first.type, 'ready');
    assert.equal(sockB.first.type, 'ready');

    const N = 15; // within the send rate's burst
    const acks = await sendAll(sockA, conv.id, 'held', N, N);
    // B has them live, each with its seq, though the database has none yet.
    const live = [];
    while (live.length < N) {
      const f = await sockB.next();
      if (f.type === 'message.new') live.push(f);
    }
    assert.deepEqual(live.map((f) => f.message.client_id), Array.from({ length: N }, (_, i) => `held${i}`));
    const metrics = (await srv.call('GET', '/metrics')).text;
    assert.match(metrics, new RegExp(`^plaza_sendlog_records_total ${N}$`, 'm'));
    assert.match(metrics, /^plaza_sendlog_applied_total 0$/m); // the backlog an operator sees
    for (let i = 1; i < N; i++) assert.equal(live[i].seq, live[i - 1].seq + 1);
    await srv.kill9();

    srv2 = await startServer({ dataDir: srv.dir });
    assert.match(srv2.logs(), /"send log records applied at start","records":15\}/);
    const hist = (await srv2.call('GET', `/v1/conversations/${conv.id}/messages?limit=100`, { token: b.token })).json.messages;
    assert.deepEqual(hist.map((m) => m.client_id).reverse(), Array.from({ length: N }, (_, i) => `held${i}`));
    for (const m of hist) assert.deepEqual(m, acks.get(m.client_id));
    // The stream after restart is the one B saw live: same seqs, same messages, no gap.
    const events = (await srv2.call('GET', '/v1/sync?since=0&limit=1000', { token: b.token })).json.events;
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
    const news = events.filter((e) => e.type === 'message.new');
    assert.deepEqual(news.map((e) => [e.seq, e.message.id]), live.map((f) => [f.seq, f.message.id]));

    // Retries give the first messages back; a new send goes on from there.
    for (let i = 0; i < N; i++) {
      const res = await srv2.call('POST', `/v1/conversations/${conv.id}/messages`, {
        token: a.token, body: { client_id: `held${i}`, text: 'changed on retry' },
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json.message, acks.get(`held${i}`));
    }
    const more = await srv2.call('POST', `/v1/conversations/${conv.id}/messages`, { token: a.token, body: { client_id: 'after', text: 'after restart' } });
    assert.equal(more.status, 201, more.text);
    const next = (await srv2.call('GET', `/v1/sync?since=${events.at(-1).seq}`, { token: b.token })).json.events;
    assert.deepEqual(next.map((e) => [e.seq, e.type, e.message.client_id]), [[events.at(-1).seq + 1, 'message.new', 'after']]);
    sockA.ws.close();
    sockB.ws.close();
  } finally {
    await srv2?.stop();
    await srv.stop();
  }
});

test('a read after an acknowledged send has it, though the writer holds logged messages back', { timeout: 60000 }, async () => {
  const srv = await startServer({ env: { PLAZA_TEST_APPLY_DELAY_MS: '300' } });
  try {
    const { a, b, conv } = await directChat(srv);
    for (let i = 0; i < 5; i++) {
      const res = await srv.call('POST', `/v1/conversations/${conv.id}/messages`, { token: a.token, body: { client_id: `r${i}`, text: `read me ${i}` } });
      assert.equal(res.status, 201, res.text);
      const hist = (await srv.call('GET', `/v1/conversations/${conv.id}/messages?limit=1`, { token: b.token })).json.messages;
      assert.equal(hist[0]?.client_id, `r${i}`);
      const list = (await srv.call('GET', '/v1/conversations', { token: b.token })).json.conversations;
      assert.equal(list.find((c) => c.id === conv.id).unread_count, i + 1);
    }
  } finally {
    await srv.stop();
  }
});

test('a write behind hundreds of logged messages finds them all, and its event follows theirs', { timeout: 60000 }, async () => {
  // The writer sleeps on its first records, so that the rest pile up
  // behind it: the read marker's job must apply all of them first (most
  // without holding up the log), then see the last message and count
  // nothing unread.
  const srv = await startServer({ env: { PLAZA_TEST_APPLY_DELAY_MS: '1500', PLAZA_MSG_RATE: '0' } });
  try {
    const { a, b, conv } = await directChat(srv);
    const sockA = await wsHello(srv, a.token);
    const N = 600;
    const acks = await sendAll(sockA, conv.id, 'pile', N, 64);
    const last = acks.get(`pile${N - 1}`);
    const read = await srv.call('POST', `/v1/conversations/${conv.id}/read`, { token: b.token, body: { message_id: last.id } });
    assert.equal(read.status, 200, read.text);
    assert.equal(read.json.unread_count, 0);
    assert.equal(read.json.last_read_id, last.id);
    assert.match((await srv.call('GET', '/metrics')).text, new RegExp(`^plaza_sendlog_applied_total ${N}$`, 'm'));
    const events = (await srv.call('GET', '/v1/sync?since=0&limit=1000', { token: b.token })).json.events;
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
    const news = events.filter((e) => e.type === 'message.new');
    assert.deepEqual(news.map((e) => e.message.client_id), Array.from({ length: N }, (_, i) => `pile${i}`));
    // The marker's events come after every message's, in the same stream.
    const after = events.slice(events.indexOf(news.at(-1)) + 1).map((e) => e.type);
    assert.ok(after.includes('conversation.read'), JSON.stringify(after));
    assert.ok(events.findIndex((e) => e.type === 'conversation.read') > events.indexOf(news.at(-1)));
    sockA.ws.close();
  } finally {
    await srv.stop();
  }
});

test('the database stays within 8,192 messages of the send log: sends wait for the apply beyond that', { timeout: 120000 }, async () => {
  // Every apply batch waits 5 s first: the log runs ahead until the bound
  // stops it, and no further.
  const srv = await startServer({ env: { PLAZA_TEST_APPLY_DELAY_MS: '5000', PLAZA_MSG_RATE: '0' } });
  try {
    const { a, conv } = await directChat(srv);
    const sockA = await wsHello(srv, a.token);
    const N = 9000;
    let lag = 0;
    let sending = true;
    const watch = (async () => {
      while (sending) {
        const m = (await srv.call('GET', '/metrics')).text;
        const num = (name) => Number(m.match(new RegExp(`^${name} (\\d+)$`, 'm'))[1]);
        lag = Math.max(lag, num('plaza_sendlog_records_total') - num('plaza_sendlog_applied_total'));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const acks = await sendAll(sockA, conv.id, 'bound', N, 64);
    sending = false;
    await watch;
    assert.equal(acks.size, N);
    assert.ok(lag <= 8192, `the database was ${lag} messages behind`);
    assert.ok(lag >= 8000, `the bound was never reached (${lag}): the test proves nothing`);
    const newest = (await srv.call('GET', `/v1/conversations/${conv.id}/messages?limit=1`, { token: a.token })).json.messages;
    assert.equal(newest[0].client_id, `bound${N - 1}`);
    sockA.ws.close();
  } finally {
    await srv.stop();
  }
});

test('the send log goes round its ring many times under load and kill -9 loses nothing acknowledged', { timeout: 180000 }, async () => {
  // A MiB of log, the least it may be, and texts of 3,000 characters
  // (records of about 6 KiB): some 170 records a lap, so 1,200 messages
  // lap it seven times, and the log waits for the writer whenever it is full.
  const env = { PLAZA_TEST_SENDLOG_BYTES: '1048576', PLAZA_MSG_RATE: '0' };
  const srv = await startServer({ env });
  let srv2;
  try {
    const { a, b, conv } = await directChat(srv);
    const sockA = await wsHello(srv, a.token);
    const N = 1200;
    const acks = await sendAll(sockA, conv.id, 'lap', N, 64, 3000);
    assert.equal(acks.size, N);
    await srv.kill9();

    srv2 = await startServer({ dataDir: srv.dir, env });
    const seen = [];
    let before = '';
    for (;;) {
      const q = before ? `&before=${before}` : '';
      const page = (await srv2.call('GET', `/v1/conversations/${conv.id}/messages?limit=200${q}`, { token: b.token })).json.messages;
      if (page.length === 0) break;
      seen.push(...page);
      before = page.at(-1).id;
    }
    assert.equal(seen.length, N);
    for (const m of seen) assert.deepEqual(m, acks.get(m.client_id));
    const events = [];
    for (let since = 0; ;) {
      const r = (await srv2.call('GET', `/v1/sync?since=${since}&limit=1000`, { token: b.token })).json;
      if (r.events.length === 0) break;
      events.push(...r.events);
      since = r.next_since;
    }
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
    assert.equal(events.filter((e) => e.type === 'message.new').length, N);
    // The log goes on after the restart.
    const sock2 = await wsHello(srv2, a.token);
    const more = await sendAll(sock2, conv.id, 'again', 300, 64, 3000);
    assert.equal(more.size, 300);
    sock2.ws.close();
    sockA.ws.close();
  } finally {
    await srv2?.stop();
    await srv.stop();
  }
});
