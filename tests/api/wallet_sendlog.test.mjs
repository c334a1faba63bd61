// Transfers in the send log: a transfer to a receiver who accepts automatically is answered once it is durable in
// the log, before the database has it. It counts against the sender's balance and daily limit at once, kill -9
// before the database has it loses nothing (`ledger verify` and the next start apply the log), and a retry gets the
// first answer.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { PLAZAD, expectError, register, startServer, wsHello } from './lib.mjs';

let keyCounter = 0;
const newKey = () => `log-${process.pid}-${++keyCounter}`;

async function person(srv, amount, { autoAccept = true } = {}) {
  const who = await register(srv);
  const call = (method, p, body) => srv.call(method, p, { token: who.token, body });
  assert.equal((await call('PUT', '/v1/wallet/pin', { pin: '123456', password: 'correct horse battery' })).status, 204);
  if (amount) assert.equal((await call('POST', '/v1/wallet/topups', { amount, currency: 'USD', idempotency_key: newKey() })).status, 201);
  if (autoAccept) assert.equal((await call('PATCH', '/v1/wallet/settings', { auto_accept_transfers: true })).status, 200);
  return who;
}

const send = (srv, from, to, amount, { key = newKey(), pin = '123456', note } = {}) =>
  srv.call('POST', '/v1/wallet/transfers', {
    token: from.token,
    body: { to_user_id: to.user.id, amount, currency: 'USD', pin, idempotency_key: key, ...(note ? { note } : {}) },
  });

const balance = async (srv, who) =>
  (await srv.call('GET', '/v1/wallet', { token: who.token })).json.balances.find((b) => b.currency === 'USD').available;

const metric = async (srv, name) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec((await srv.call('GET', '/metrics')).text)[1]);

test('transfers answered while the database is held back survive kill -9, and retries get the first answers', { timeout: 120000 }, async () => {
  // The writer waits a minute before it applies logged records: the kill comes long before, so the transfers exist
  // only in the send log. Setting up (sign-ups, PINs, top-ups) is the writer's own work, which does not wait.
  const srv = await startServer({ env: { PLAZA_TEST_APPLY_DELAY_MS: '60000' } });
  let srv2;
  let keep = false;
  try {
    const [a, b, c] = [await person(srv, 100000), await person(srv, 100000), await person(srv, 100000)];
    const sockB = await wsHello(srv, b.token);
    assert.equal(sockB.first.type, 'ready');
    const logged0 = await metric(srv, 'plaza_sendlog_records_total');

    const plan = [];
    for (let i = 0; i < 8; i++) plan.push([a, b, 1000 + i], [b, c, 700 + i], [c, a, 300 + i]);
    const made = await Promise.all(plan.map(async ([from, to, amount], i) => {
      const key = newKey();
      const res = await send(srv, from, to, amount, { key, note: `n${i}` });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.transfer.status, 'completed');
      return { from, to, amount, key, answer: res.json };
    }));
    // Every one went through the log, and none is in the database yet.
    assert.equal(await metric(srv, 'plaza_sendlog_records_total'), logged0 + plan.length);
    assert.equal(await metric(srv, 'plaza_sendlog_applied_total'), 0);
    // B hears each of its transfers live, sent and received, each with its own seq.
    const theirs = made.filter((t) => t.from === b || t.to === b).map((t) => t.answer.transfer.id).sort();
    const live = [];
    while (live.length < theirs.length) {
      const f = await sockB.next();
      if (f.type === 'transfer.updated') live.push(f);
    }
    assert.deepEqual(live.map((f) => f.transfer.id).sort(), theirs);
    for (const f of live) assert.deepEqual(f.transfer, made.find((t) => t.answer.transfer.id === f.transfer.id).answer.transfer);
    sockB.ws.close();
    await srv.kill9();

    // `ledger verify` on the directory the crash left applies what the log holds first, as plazad's start would.
    const v0 = spawnSync(PLAZAD, ['ledger', 'verify', '--data-dir', srv.dir], { encoding: 'utf8' });
    assert.equal(v0.status, 0, v0.stdout + v0.stderr);
    assert.match(v0.stderr, new RegExp(`applied ${plan.length} records of the send log first`));
    srv2 = await startServer({ dataDir: srv.dir });
    assert.doesNotMatch(srv2.logs(), /send log records applied at start/); // nothing twice
    const expected = (who) => 100000 - made.filter((t) => t.from === who).reduce((s, t) => s + t.amount, 0) +
      made.filter((t) => t.to === who).reduce((s, t) => s + t.amount, 0);
    for (const who of [a, b, c]) assert.equal(await balance(srv2, who), expected(who));
    // Each transfer is in both histories, and B's stream holds the events B saw live, with the same seqs.
    const hist = (await srv2.call('GET', '/v1/wallet/transactions?limit=100', { token: b.token })).json.transactions;
    assert.equal(hist.length, 1 + theirs.length); // and the top-up
    const events = (await srv2.call('GET', '/v1/sync?since=0&limit=1000', { token: b.token })).json.events;
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
    const updates = events.filter((e) => e.type === 'transfer.updated');
    assert.deepEqual(updates.map((e) => [e.seq, e.transfer.id]).sort(), live.map((f) => [f.seq, f.transfer.id]).sort());
    // A retry with the same key is the first answer, and moves nothing.
    for (const t of made) {
      const res = await send(srv2, t.from, t.to, t.amount, { key: t.key, note: `n${made.indexOf(t)}` });
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(res.json, t.answer);
    }
    for (const who of [a, b, c]) assert.equal(await balance(srv2, who), expected(who));
    await srv2.stop({ keepData: true });
    srv2 = undefined;
    keep = true;
    const v = spawnSync(PLAZAD, ['ledger', 'verify', '--data-dir', srv.dir], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stdout + v.stderr);
  } finally {
    await srv2?.stop();
    if (keep) rmSync(srv.dir, { recursive: true, force: true });
    else await srv.stop();
  }
});

test('a logged transfer counts against the balance and the daily limit before the database has it', { timeout: 60000 }, async () => {
  // The writer holds logged records back 300 ms (a read waits for them: the balances below are the database's).
  const srv = await startServer({ env: { PLAZA_TEST_APPLY_DELAY_MS: '300', PLAZA_DAILY_LIMITS: '0:2000' } });
  try {
    const [a, b] = [await person(srv, 1000), await person(srv, 0)];
    assert.equal((await send(srv, a, b, 600)).status, 201);
    // 400 left: the log sends this one to the writer, which applies the first and refuses it.
    expectError(assert, await send(srv, a, b, 600), 422, 'insufficient_funds');
    assert.equal(await balance(srv, a), 400);
    assert.equal(await balance(srv, b), 600);
    // B received 600 and spends it; the limit counts what B sent today, logged or applied.
    const c = await person(srv, 0);
    assert.equal((await send(srv, b, c, 300)).status, 201);
    assert.equal((await send(srv, b, c, 300)).status, 201);
    assert.equal(await balance(srv, c), 600);
    const top = await srv.call('POST', '/v1/wallet/topups', { token: b.token, body: { amount: 5000, currency: 'USD', idempotency_key: newKey() } });
    assert.equal(top.status, 201, top.text);
    assert.equal((await send(srv, b, c, 1400)).status, 201); // 2000 today
    expectError(assert, await send(srv, b, c, 1), 422, 'daily_limit_exceeded');
    // A wrong PIN is counted by the writer; the next right one clears the count there.
    expectError(assert, await send(srv, a, b, 10, { pin: '000000' }), 403, 'wrong_pin');
    assert.equal((await send(srv, a, b, 10)).status, 201);
    assert.equal((await send(srv, a, b, 10)).status, 201);
    assert.equal(await balance(srv, a), 380);
    // To a receiver who accepts by hand, the transfer waits, through the writer as before.
    const d = await person(srv, 0, { autoAccept: false });
    const pending = await send(srv, a, d, 80);
    assert.equal(pending.status, 201, pending.text);
    assert.equal(pending.json.transfer.status, 'pending');
    assert.equal(await balance(srv, a), 300);
  } finally {
    await srv.stop();
  }
});
