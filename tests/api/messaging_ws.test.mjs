// API tests of messaging over the WebSocket: live delivery to every device, catch-up from since without gaps or repeats, and send/ack frames.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { login, openWs, register, startServer } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

async function befriend(a, b) {
  const r = await srv.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
  assert.equal(r.status, 201, r.text);
  assert.equal((await srv.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token })).status, 200);
}

async function pair() {
  const a = await register(srv);
  const b = await register(srv);
  await befriend(a, b);
  const res = await srv.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.user.id } });
  assert.equal(res.status, 201, res.text);
  return { a, b, conv: res.json.conversation };
}

const send = async (who, convId, text, clientId) => {
  const res = await srv.call('POST', `/v1/conversations/${convId}/messages`, {
    token: who.token, body: { client_id: clientId, text },
  });
  assert.equal(res.status, 201, res.text);
  return res.json.message;
};

/** A socket said hello with since and got ready. */
async function connect(token, since = 0) {
  const c = openWs(srv);
  await c.opened;
  c.send({ type: 'hello', token, since });
  const first = await c.next();
  assert.equal(first.type, 'ready', JSON.stringify(first));
  return c;
}

/** The next frames that are events (they carry seq), until n of them came; fails after 20 s. */
async function events(c, n) {
  const out = [];
  const deadline = Date.now() + 20000;
  while (out.length < n) {
    const left = deadline - Date.now();
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(resolve, Math.max(left, 0), null); });
    const f = await Promise.race([c.next(), timeout]);
    clearTimeout(timer);
    assert.ok(f, `only ${out.length} of ${n} events arrived: ${JSON.stringify(out.map((e) => e.seq))}`);
    if (f.seq !== undefined) out.push(f);
  }
  return out;
}

/** Everything the socket still has queued: pings it, and collects frames until the pong. */
async function drain(c) {
  c.send({ type: 'ping' });
  const out = [];
  for (;;) {
    const f = await c.next();
    if (f.type === 'pong') return out;
    if (f.type !== 'presence') out.push(f); // contacts coming and going: not what these tests are about
  }
}

/** The next frame that is not a presence frame. */
async function nextFrame(c) {
  for (;;) {
    const f = await c.next();
    if (f.type !== 'presence') return f;
  }
}

const close = async (c) => { c.ws.close(1000); await c.closed; };

describe('live events', () => {
  test('two devices of the sender and the other member\'s device all get message.new', async () => {
    const { a, b, conv } = await pair();
    const a2 = (await login(srv, a.username)).json.token;
    // Each device starts from where its user's stream is: 1 (conversation.new).
    const phone = await connect(a.token, 1);
    const laptop = await connect(a2, 1);
    const theirs = await connect(b.token, 1);
    const m = await send(a, conv.id, 'hello everyone', 'live-1');
    for (const c of [phone, laptop, theirs]) {
      const [ev] = await events(c, 1);
      assert.equal(ev.type, 'message.new');
      assert.equal(ev.seq, 2);
      assert.deepEqual(ev.message, m);
    }
    const reply = await send(b, conv.id, 'hi!', 'live-2');
    for (const c of [phone, laptop, theirs]) {
      const [ev] = await events(c, 1);
      assert.equal(ev.seq, 3);
      assert.equal(ev.message.id, reply.id);
    }
    for (const c of [phone, laptop, theirs]) assert.deepEqual(await drain(c), []);
    await Promise.all([phone, laptop, theirs].map(close));
  });

  test('a new group reaches its members as conversation.new', async () => {
    const owner = await register(srv);
    const m = await register(srv);
    await befriend(owner, m);
    const sock = await connect(m.token, 0);
    const res = await srv.call('POST', '/v1/conversations', {
      token: owner.token, body: { type: 'group', title: 'Live group', member_ids: [m.user.id] },
    });
    assert.equal(res.status, 201);
    const [ev] = await events(sock, 1);
    assert.equal(ev.type, 'conversation.new');
    assert.deepEqual(ev.conversation, res.json.conversation);
    await close(sock);
  });
});

describe('catch-up from since', () => {
  test('hello since=0 replays the whole stream in order before live events', async () => {
    const { a, b, conv } = await pair();
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await send(a, conv.id, `old ${i}`, `o${i}`));
    const sock = await connect(b.token, 0);
    const got = await events(sock, 6);
    assert.deepEqual(got.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
    assert.equal(got[0].type, 'conversation.new');
    assert.deepEqual(got.slice(1).map((e) => e.message.id), sent.map((m) => m.id));
    const live = await send(a, conv.id, 'now', 'n');
    const [ev] = await events(sock, 1);
    assert.equal(ev.seq, 7);
    assert.equal(ev.message.id, live.id);
    assert.deepEqual(await drain(sock), []);
    await close(sock);
  });

  test('reconnecting with the last seq seen gets exactly the missed events, also those sent during the reconnect', { timeout: 120000 }, async () => {
    const { a, b, conv } = await pair();
    const c = await register(srv);
    await befriend(c, b);
    const convC = (await srv.call('POST', '/v1/conversations', { token: c.token, body: { type: 'direct', user_id: b.user.id } })).json.conversation;
    const group = (title) => srv.call('POST', '/v1/conversations', {
      token: a.token, body: { type: 'group', title, member_ids: [b.user.id] },
    }).then((res) => { assert.equal(res.status, 201); return res.json.conversation.id; });
    let sock = await connect(b.token, 0);
    let last = (await events(sock, 2)).pop().seq;
    // Rounds of: away, then back while events keep coming. Which events
    // land in the middle of a catch-up is up to timing, so several rounds
    // with a burst of concurrent writes at each hello.
    for (let round = 0; round < 4; round++) {
      await close(sock);
      const expected = new Set();
      for (let i = 0; i < 3; i++) expected.add((await send(a, conv.id, `away ${round}.${i}`, `away${round}.${i}`)).id);
      for (let i = 0; i < 210; i++) expected.add(await group(`away ${round}.${i}`));
      sock = openWs(srv);
      await sock.opened;
      // The hello goes once the burst is flowing, so that its live events
      // reach the registry while the catch-up reads.
      let done = 0;
      let flowing;
      const started = new Promise((resolve) => { flowing = resolve; });
      const count = (p) => p.then((id) => { if (++done === 10) flowing(); return id; });
      const during = Promise.all([
        ...Array.from({ length: 150 }, (_, i) => count(group(`during ${round}.${i}`))),
        ...Array.from({ length: 10 }, (_, i) => count(send(c, convC.id, `during ${round}.${i}`, `dur${round}.${i}`).then((m) => m.id))),
      ]);
      await started;
      sock.send({ type: 'hello', token: b.token, since: last });
      assert.equal((await sock.next()).type, 'ready');
      for (const id of await during) expected.add(id);
      const got = await events(sock, expected.size);
      // Seq continue from last without a gap or a repeat, and carry what was missed.
      assert.deepEqual(got.map((e) => e.seq), Array.from({ length: expected.size }, (_, i) => last + 1 + i));
      const gotIds = got.map((e) => (e.type === 'message.new' ? e.message.id : e.conversation.id));
      assert.deepEqual(new Set(gotIds), expected);
      // The stream agrees with /v1/sync.
      const synced = (await srv.call('GET', `/v1/sync?since=${last}&limit=1000`, { token: b.token })).json;
      assert.deepEqual(synced.events, got);
      assert.deepEqual(await drain(sock), []);
      last = got[got.length - 1].seq;
    }
    await close(sock);
  });

  test('more events than one catch-up page arrive whole and in order', async () => {
    const owner = await register(srv);
    const friends = [];
    for (let i = 0; i < 3; i++) {
      const f = await register(srv);
      await befriend(owner, f);
      friends.push(f);
    }
    // Many conversations, each a conversation.new event of owner's stream.
    for (let i = 0; i < 250; i++) {
      const res = await srv.call('POST', '/v1/conversations', {
        token: owner.token, body: { type: 'group', title: `g${i}`, member_ids: [friends[i % 3].user.id] },
      });
      assert.equal(res.status, 201);
    }
    const sock = await connect(owner.token, 5);
    const got = await events(sock, 245);
    assert.deepEqual(got.map((e) => e.seq), Array.from({ length: 245 }, (_, i) => 6 + i));
    assert.deepEqual(await drain(sock), []);
    await close(sock);
  });

  test('a since beyond the end of the stream resumes from its end', async () => {
    const { a, b, conv } = await pair();
    const sock = await connect(b.token, 1000);
    const m = await send(a, conv.id, 'after a bogus since', 'bogus');
    const [ev] = await events(sock, 1);
    assert.equal(ev.seq, 2);
    assert.equal(ev.message.id, m.id);
    await close(sock);
  });
});

describe('send frames', () => {
  test('send is acknowledged with the stored message once durable; a retry acks the same message', async () => {
    const { a, b, conv } = await pair();
    const mine = await connect(a.token, 1);
    const theirs = await connect(b.token, 1);
    mine.send({ type: 'send', conversation_id: conv.id, client_id: 'ws-1', text: 'over the socket' });
    const frames = [await nextFrame(mine), await nextFrame(mine)];
    const ack = frames.find((f) => f.type === 'ack');
    const ev = frames.find((f) => f.type === 'message.new');
    assert.ok(ack && ev, JSON.stringify(frames));
    assert.equal(ack.client_id, 'ws-1');
    assert.equal(ack.message.text, 'over the socket');
    assert.equal(ack.message.sender_id, a.user.id);
    assert.deepEqual(ev.message, ack.message);
    const [theirEv] = await events(theirs, 1);
    assert.deepEqual(theirEv.message, ack.message);

    mine.send({ type: 'send', conversation_id: conv.id, client_id: 'ws-1', text: 'over the socket' });
    const again = await nextFrame(mine);
    assert.equal(again.type, 'ack');
    assert.deepEqual(again.message, ack.message);
    assert.deepEqual(await drain(theirs), []);
    const hist = (await srv.call('GET', `/v1/conversations/${conv.id}/messages`, { token: a.token })).json.messages;
    assert.equal(hist.length, 1);
    await Promise.all([mine, theirs].map(close));
  });

  test('a refused send is an error frame with its client_id; the socket stays open', async () => {
    const { a, conv } = await pair();
    const outsider = await register(srv);
    const sock = await connect(outsider.token, 0);
    sock.send({ type: 'send', conversation_id: conv.id, client_id: 'x1', text: 'hi' });
    let f = await sock.next();
    assert.deepEqual([f.type, f.client_id, f.code], ['error', 'x1', 'not_member']);
    const own = await connect(a.token, 1);
    own.send({ type: 'send', conversation_id: conv.id, client_id: 'x2', text: '' });
    f = await own.next();
    assert.deepEqual([f.type, f.client_id, f.code], ['error', 'x2', 'invalid_request']);
    own.send({ type: 'send', client_id: 'x3', text: 'where?' });
    f = await own.next();
    assert.deepEqual([f.type, f.client_id, f.code], ['error', 'x3', 'invalid_request']);
    assert.deepEqual(await drain(own), []);
    await Promise.all([sock, own].map(close));
  });

  test('a flood of send frames is rate limited with error frames', async () => {
    const { a, conv } = await pair();
    const sock = await connect(a.token, 1);
    for (let i = 0; i < 100; i++) sock.send({ type: 'send', conversation_id: conv.id, client_id: `fl${i}`, text: `${i}` });
    const acks = new Set();
    const limited = new Set();
    while (acks.size + limited.size < 100) {
      const f = await sock.next();
      if (f.type === 'ack') acks.add(f.client_id);
      else if (f.type === 'error') {
        assert.equal(f.code, 'rate_limited');
        assert.ok(f.retry_after >= 1);
        limited.add(f.client_id);
      }
    }
    assert.ok(limited.size > 0);
    const hist = (await srv.call('GET', `/v1/conversations/${conv.id}/messages?limit=200`, { token: a.token })).json.messages;
    assert.deepEqual(new Set(hist.map((m) => m.client_id)), acks);
    await close(sock);
  });
});
