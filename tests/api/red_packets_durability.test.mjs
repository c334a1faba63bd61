// Durability of red packets: random concurrent sends and claims cut by kill -9; retries with the same keys never pay twice, no claim is made twice or lost, money in equals money topped up, and the ledger verifies.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { PASSWORD, PLAZAD, register, startServer } from './lib.mjs';

const USERS = 8;
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

test('kill -9 amid red packets and racing claims: every acknowledged share stands, none is paid twice, the ledger verifies', { timeout: 240000 }, async () => {
  const seed = Number(process.env.WALLET_SEED ?? Date.now() % 100000);
  const rand = rng(seed);
  const pick = (arr) => arr[Math.floor(rand() * arr.length)];
  let srv = await startServer();
  const dir = srv.dir;
  try {
    const users = [];
    for (let i = 0; i < USERS; i++) {
      const u = await register(srv);
      assert.equal((await srv.call('PUT', '/v1/wallet/pin', { token: u.token, body: { pin: '123456', password: PASSWORD } })).status, 204);
      users.push(u);
    }
    const owner = users[0];
    for (const u of users.slice(1)) {
      const r = await srv.call('POST', '/v1/contacts/requests', { token: owner.token, body: { user_id: u.user.id } });
      assert.equal((await srv.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: u.token })).status, 200);
    }
    const grp = await srv.call('POST', '/v1/conversations', {
      token: owner.token, body: { type: 'group', title: 'Lucky', member_ids: users.slice(1).map((u) => u.user.id) },
    });
    assert.equal(grp.status, 201, grp.text);
    const convId = grp.json.conversation.id;

    const ops = [];
    const packets = []; // ids of acknowledged packets
    const tried = new Set(); // `${user}:${packet}` pairs that have a claim op
    let seq = 0;
    let lost = 0;

    function newOp() {
      const r = rand();
      const u = pick(users);
      if (r < 0.2) {
        return { kind: 'topup', user: u, path: '/v1/wallet/topups',
          body: { amount: 1000 + Math.floor(rand() * 5000), currency: 'USD', idempotency_key: `r${seed}-${++seq}` } };
      }
      if (r < 0.45 || packets.length === 0) {
        const count = 1 + Math.floor(rand() * 6);
        return { kind: 'packet', user: u, path: `/v1/conversations/${convId}/red-packets`,
          body: { total: count + Math.floor(rand() * 3000), count, mode: rand() < 0.7 ? 'random' : 'equal', currency: 'USD',
            pin: '123456', idempotency_key: `r${seed}-${++seq}` } };
      }
      // A claim by someone who has not tried this packet yet; recent packets are the busiest.
      for (let attempt = 0; attempt < 10; attempt++) {
        const id = packets[Math.max(0, packets.length - 1 - Math.floor(rand() * 4))];
        const who = pick(users);
        if (tried.has(`${who.user.id}:${id}`)) continue;
        tried.add(`${who.user.id}:${id}`);
        return { kind: 'claim', user: who, packetId: id, path: `/v1/red-packets/${id}/claim`,
          body: { idempotency_key: `r${seed}-${++seq}` } };
      }
      return { kind: 'topup', user: u, path: '/v1/wallet/topups',
        body: { amount: 500, currency: 'USD', idempotency_key: `r${seed}-${++seq}` } };
    }

    function record(op, res) {
      if (res.status >= 500) return false;
      if (op.answer) {
        assert.equal(res.text, op.answer.text, `${op.kind} ${op.body.idempotency_key} answered differently (seed ${seed})`);
        return true;
      }
      op.answer = { status: res.status, text: res.text, json: res.json };
      if (op.kind === 'packet' && res.status === 201) packets.push(res.json.red_packet.id);
      return true;
    }

    const run = async (s, op) => record(op, await s.call('POST', op.path, { token: op.user.token, body: op.body }));

    for (let round = 0; round <= KILLS; round++) {
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
      srv = await startServer({ dataDir: dir });
      const lostNow = ops.filter((o) => !o.answer);
      lost += lostNow.length;
      // Lost claims are retried all at once, racing each other again.
      await Promise.all(lostNow.map(async (op) => assert.ok(await run(srv, op), `retry of ${op.kind} got no final answer`)));
    }
    for (const op of ops.filter(() => rand() < 0.3)) await run(srv, op);

    const expected = new Map(users.map((u) => [u.user.id, 0]));
    const add = (id, v) => expected.set(id, expected.get(id) + v);
    let toppedUp = 0;
    let inEscrow = 0;
    const won = new Map(); // `${user}:${packet}` -> amount, from the answers
    for (const op of ops) {
      const a = op.answer;
      assert.ok(a, 'an operation without an answer');
      if (op.kind === 'topup') {
        assert.equal(a.status, 201, a.text);
        add(op.user.user.id, op.body.amount);
        toppedUp += op.body.amount;
      } else if (op.kind === 'packet') {
        assert.ok(a.status === 201 || a.status === 422, a.text);
        if (a.status === 201) add(op.user.user.id, -op.body.total);
      } else {
        assert.ok(a.status === 200 || (a.status === 409 && a.json.error.code === 'red_packet_empty'), a.text);
        if (a.status === 200) won.set(`${op.user.user.id}:${op.packetId}`, a.json.amount);
      }
    }
    const seenPackets = new Set();
    for (const id of packets) {
      assert.ok(!seenPackets.has(id), 'two operations answered with one packet');
      seenPackets.add(id);
      const p = (await srv.call('GET', `/v1/red-packets/${id}`, { token: owner.token })).json.red_packet;
      const claimants = new Set(p.claims.map((c) => c.user.id));
      assert.equal(claimants.size, p.claims.length, `someone claimed packet ${id} twice (seed ${seed})`);
      assert.ok(p.claims.length <= p.count);
      const paid = p.claims.reduce((x, c) => x + c.amount, 0);
      assert.ok(paid <= p.total);
      assert.ok(p.claims.every((c) => c.amount >= 1));
      if (p.claims.length === p.count) assert.equal(paid, p.total, `finished packet ${id} paid ${paid} of ${p.total}`);
      else inEscrow += p.total - paid;
      for (const c of p.claims) {
        // Every share on record was answered to its claimant, with its amount: no share lost.
        assert.equal(won.get(`${c.user.id}:${id}`), c.amount, `claim of ${c.user.id} on ${id} (seed ${seed})`);
        won.delete(`${c.user.id}:${id}`);
        add(c.user.id, c.amount);
      }
    }
    assert.equal(won.size, 0, `acknowledged shares missing from their packets (seed ${seed})`);
    let inWallets = 0;
    for (const u of users) {
      const res = await srv.call('GET', '/v1/wallet', { token: u.token });
      const bal = res.json.balances.find((b) => b.currency === 'USD').available;
      assert.equal(bal, expected.get(u.user.id), `balance of ${u.username} (seed ${seed})`);
      inWallets += bal;
    }
    assert.equal(inWallets + inEscrow, toppedUp, `money in the system (seed ${seed})`);
    const nClaims = ops.filter((o) => o.kind === 'claim').length;
    assert.ok(packets.length > 10 && nClaims > 30, `too few packets (${packets.length}) or claims (${nClaims}) ran`);
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
