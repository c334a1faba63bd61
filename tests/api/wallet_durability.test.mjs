// Durability of the wallet: random concurrent top-ups, transfers, accepts, returns and withdrawals cut by kill -9; retries with the same keys never move money twice, and the ledger verifies.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { PASSWORD, PLAZAD, register, startServer } from './lib.mjs';

const USERS = 10;
const KILLS = 4;
const CONCURRENCY = 8;

// A small deterministic generator, so that a failure can be replayed by its seed.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('kill -9 at random moments: every acknowledged operation stands, retries move nothing twice, the ledger verifies', { timeout: 240000 }, async () => {
  const seed = Number(process.env.WALLET_SEED ?? Date.now() % 100000);
  const rand = rng(seed);
  const pick = (arr) => arr[Math.floor(rand() * arr.length)];
  // The provider answers after a while, so that kills also fall between a
  // funding's two jobs (pending, then settled) and retries resume it.
  const env = { PLAZA_SANDBOX_DELAY_MS: '20' };
  let srv = await startServer({ env });
  const dir = srv.dir;
  try {
    const users = [];
    for (let i = 0; i < USERS; i++) {
      const u = await register(srv);
      const pin = await srv.call('PUT', '/v1/wallet/pin', { token: u.token, body: { pin: '123456', password: PASSWORD } });
      assert.equal(pin.status, 204);
      if (i % 3 === 0) {
        await srv.call('PATCH', '/v1/wallet/settings', { token: u.token, body: { auto_accept_transfers: true } });
      }
      users.push(u);
    }

    // Every operation, with its request and its final answer (null while unknown).
    const ops = [];
    const pendingTransfers = []; // { id, from, to } known pending and not yet claimed by an accept or return
    let seq = 0;
    let lost = 0;

    function newOp() {
      const r = rand();
      const u = pick(users);
      if (r < 0.3) {
        return { kind: 'topup', user: u, path: '/v1/wallet/topups',
          body: { amount: 1 + Math.floor(rand() * 5000), currency: 'USD', idempotency_key: `s${seed}-${++seq}` } };
      }
      if (r < 0.7) {
        let v = pick(users);
        while (v === u) v = pick(users);
        return { kind: 'transfer', user: u, to: v, path: '/v1/wallet/transfers',
          body: { to_user_id: v.user.id, amount: 1 + Math.floor(rand() * 3000), currency: 'USD', pin: '123456',
            idempotency_key: `s${seed}-${++seq}`, note: `n${seq}` } };
      }
      if (r < 0.92 && pendingTransfers.length > 0) {
        const t = pendingTransfers.splice(Math.floor(rand() * pendingTransfers.length), 1)[0];
        const verb = rand() < 0.7 ? 'accept' : 'return';
        return { kind: verb, user: t.to, transferId: t.id, path: `/v1/wallet/transfers/${t.id}/${verb}` };
      }
      return { kind: 'withdrawal', user: u, path: '/v1/wallet/withdrawals',
        body: { amount: 1 + Math.floor(rand() * 1000), currency: 'USD', pin: '123456', idempotency_key: `s${seed}-${++seq}` } };
    }

    function record(op, res) {
      const final = res.status < 500;
      if (!final) return false;
      if (op.answer) {
        // A retry of an acknowledged call: the first answer, byte for byte.
        if (op.body?.idempotency_key) assert.equal(res.text, op.answer.text, `${op.kind} ${op.body.idempotency_key} answered differently`);
        return true;
      }
      op.answer = { status: res.status, text: res.text, json: res.json };
      if (op.kind === 'transfer' && res.status === 201 && res.json.transfer.status === 'pending') {
        pendingTransfers.push({ id: res.json.transfer.id, from: op.user, to: op.to });
      }
      return true;
    }

    async function run(s, op) {
      const res = await s.call('POST', op.path, { token: op.user.token, body: op.body });
      return record(op, res);
    }

    for (let round = 0; round <= KILLS; round++) {
      // A burst of operations, CONCURRENCY at a time; in rounds before the
      // last, kill -9 once a random number of them are acknowledged.
      const killAfter = round < KILLS ? 10 + Math.floor(rand() * 30) : Infinity;
      const total = round < KILLS ? killAfter + 40 : 60;
      let acked = 0;
      let killing = null;
      let started = 0;
      const worker = async () => {
        while (!killing && started < total) {
          started++;
          const op = newOp();
          ops.push(op);
          try {
            if (await run(srv, op)) acked++;
          } catch { /* cut off by the kill: retried below */ }
          if (acked >= killAfter && !killing) killing = srv.kill9();
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      if (!killing) break;
      await killing;
      srv = await startServer({ dataDir: dir, env });
      // Retry every call whose answer was lost, with the same key.
      const lostNow = ops.filter((o) => !o.answer);
      lost += lostNow.length;
      for (const op of lostNow) {
        assert.ok(await run(srv, op), `retry of ${op.kind} got no final answer`);
      }
    }
    // Retry acknowledged money-moving calls once more: same answers, nothing moves.
    for (const op of ops.filter((o) => o.body?.idempotency_key && rand() < 0.3)) await run(srv, op);

    // What the acknowledged answers imply, with each transfer's final state.
    const expected = new Map(users.map((u) => [u.user.id, 0]));
    const add = (id, v) => expected.set(id, expected.get(id) + v);
    let toppedUp = 0;
    let withdrawn = 0;
    let inEscrow = 0;
    const seenIds = new Set();
    for (const op of ops) {
      const a = op.answer;
      assert.ok(a, 'an operation without an answer');
      if (op.kind === 'topup') {
        assert.equal(a.status, 201, a.text);
        assert.ok(!seenIds.has(a.json.topup.id));
        seenIds.add(a.json.topup.id);
        if (a.json.topup.status === 'completed') {
          add(op.user.user.id, op.body.amount);
          toppedUp += op.body.amount;
        }
      } else if (op.kind === 'withdrawal') {
        assert.ok(a.status === 201 || a.status === 422, a.text);
        if (a.status === 201 && a.json.withdrawal.status === 'completed') {
          add(op.user.user.id, -op.body.amount);
          withdrawn += op.body.amount;
        }
      } else if (op.kind === 'transfer') {
        assert.ok(a.status === 201 || a.status === 422, a.text);
        if (a.status !== 201) continue;
        const id = a.json.transfer.id;
        assert.ok(!seenIds.has(id), 'two operations answered with one transfer');
        seenIds.add(id);
        const now = (await srv.call('GET', `/v1/wallet/transfers/${id}`, { token: op.user.token })).json.transfer;
        if (now.status === 'pending') {
          add(op.user.user.id, -op.body.amount);
          inEscrow += op.body.amount;
        } else if (now.status === 'completed') {
          add(op.user.user.id, -op.body.amount);
          add(op.to.user.id, op.body.amount);
        } // returned or expired: back with the sender
      } else {
        assert.equal(a.status, 200, `${op.kind}: ${a.text}`);
      }
    }
    let inWallets = 0;
    for (const u of users) {
      const res = await srv.call('GET', '/v1/wallet', { token: u.token });
      const bal = res.json.balances.find((b) => b.currency === 'USD').available;
      assert.equal(bal, expected.get(u.user.id), `balance of ${u.username} (seed ${seed})`);
      inWallets += bal;
    }
    assert.equal(inWallets + inEscrow, toppedUp - withdrawn, `money in the system (seed ${seed})`);
    assert.ok(ops.length > 100, `only ${ops.length} operations ran`);
    assert.ok(lost > 0, 'no answer was ever cut off: the kills tested nothing');

    await srv.stop({ keepData: true });
    srv = null;
    const v = spawnSync(PLAZAD, ['ledger', 'verify', '--data-dir', dir], { encoding: 'utf8' });
    assert.equal(v.status, 0, `ledger verify (seed ${seed}): ${v.stdout}${v.stderr}`);
  } finally {
    if (srv) await srv.stop();
    else spawnSync('rm', ['-rf', dir]);
  }
});
