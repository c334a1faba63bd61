// The wallet's randomized crash test: thousands of concurrent top-ups, withdrawals, transfers, accepts, returns, red packets, claims, merchant orders, payments and refunds among many users, cut by kill -9 at random moments; every lost call is retried with its key, and at the end every balance is what the answers imply, money is conserved, and the ledger verifies.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { PASSWORD, PLAZAD, register, startServer } from './lib.mjs';

// About 20 s on the sanitizer build of a 2-core machine (the budget is
// three minutes); WALLET_CHAOS_OPS and WALLET_CHAOS_USERS change the size.
const USERS = Number(process.env.WALLET_CHAOS_USERS ?? 20);
const OPS = Number(process.env.WALLET_CHAOS_OPS ?? 3000);
const CONCURRENCY = 24;
const MERCHANTS = 3;
const PIN = '123456';
const CURRENCIES = ['USD', 'EUR'];

// A small deterministic generator, so that a failure can be replayed by its
// seed (the interleaving of answers still varies from run to run).
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

test('wallet chaos: concurrent money of every kind, kill -9 at random moments, retries by key; balances, conservation and the ledger hold', { timeout: 400000 }, async (t) => {
  const seed = Number(process.env.WALLET_SEED ?? Date.now() % 1000000);
  t.diagnostic(`WALLET_SEED=${seed}`);
  console.log(`# wallet chaos: WALLET_SEED=${seed}`);
  const rand = rng(seed);
  const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1)); // lo..hi, both included
  const pick = (arr) => arr[Math.floor(rand() * arr.length)];
  const cur = () => (rand() < 0.8 ? 'USD' : 'EUR');
  const ctx = (op) => `${op.kind} #${op.seq} (seed ${seed})`;

  // The provider answers after a while, so that kills also fall between a
  // funding's two jobs; a daily limit some busy senders reach.
  const env = { PLAZA_SANDBOX_DELAY_MS: '10', PLAZA_DAILY_LIMITS: '0:80000' };
  let srv = await startServer({ env });
  const dir = srv.dir;
  let stopped = false;
  try {
    // --- Setting the stage: users with PINs, contacts, chats, a group, merchants.
    const users = [];
    for (let i = 0; i < USERS; i++) {
      const u = await register(srv);
      const pin = await srv.call('PUT', '/v1/wallet/pin', { token: u.token, body: { pin: PIN, password: PASSWORD } });
      assert.equal(pin.status, 204, pin.text);
      u.id = u.user.id;
      u.idx = i;
      u.auto = i % 5 === 4;
      if (u.auto) {
        const s = await srv.call('PATCH', '/v1/wallet/settings', { token: u.token, body: { auto_accept_transfers: true } });
        assert.equal(s.status, 200, s.text);
      }
      users.push(u);
    }
    const byId = new Map(users.map((u) => [u.id, u]));
    const pairKey = (a, b) => (a.idx < b.idx ? `${a.idx}:${b.idx}` : `${b.idx}:${a.idx}`);
    const befriend = async (a, b) => {
      const r = await srv.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.id } });
      assert.equal(r.status, 201, r.text);
      const ok = await srv.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token });
      assert.equal(ok.status, 200, ok.text);
    };
    // users[0] knows everyone (to make the group); each user also knows the
    // next one around the ring, and each such pair has a direct chat.
    const contacts = new Set();
    for (let i = 1; i < USERS; i++) { await befriend(users[0], users[i]); contacts.add(pairKey(users[0], users[i])); }
    const chats = new Map(); // pairKey -> direct conversation id
    for (let i = 0; i < USERS; i++) {
      const a = users[i];
      const b = users[(i + 1) % USERS];
      if (!contacts.has(pairKey(a, b))) { await befriend(a, b); contacts.add(pairKey(a, b)); }
      const c = await srv.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.id } });
      assert.ok(c.status === 201 || c.status === 200, c.text);
      chats.set(pairKey(a, b), c.json.conversation.id);
    }
    const grp = await srv.call('POST', '/v1/conversations', {
      token: users[0].token, body: { type: 'group', title: 'Chaos', member_ids: users.slice(1).map((u) => u.id) },
    });
    assert.equal(grp.status, 201, grp.text);
    const groupId = grp.json.conversation.id;
    const merchants = [];
    for (let i = 0; i < MERCHANTS; i++) {
      const owner = users[1 + i * 3];
      const m = await srv.call('POST', '/v1/merchants', { token: owner.token, body: { name: `Stall ${i}` } });
      assert.equal(m.status, 201, m.text);
      merchants.push({ owner, id: m.json.merchant.id, apiKey: m.json.api_key, code: m.json.merchant.payment_code });
    }

    // --- The model: what the answers seen so far imply.
    const bal = new Map(); // `${userId}:${currency}` -> minor units
    const add = (userId, currency, v) => { const k = `${userId}:${currency}`; bal.set(k, (bal.get(k) ?? 0) + v); };
    const toppedUp = { USD: 0, EUR: 0 };
    const withdrawn = { USD: 0, EUR: 0 };
    const transfers = new Map(); // id -> { from, to, amount, currency, status }
    const actionable = []; // ids of pending transfers with no accept/return op yet
    const packets = new Map(); // id -> { sender, total, count, currency, direct, claims: Map userId -> amount, empty }
    const packetList = []; // ids in the order they were acknowledged
    const tried = new Set(); // `${userId}:${packetId}` with a claim op
    const orders = new Map(); // id -> { m, amount, currency, payer, payOp, paid, refunded, refundable }
    const payable = []; // ids of pending orders with no payment under way
    const refundableOrders = []; // ids of paid orders with something left to refund
    const createdIds = new Set(); // every id an answer created: no two operations may share one
    const keyed = []; // acknowledged operations with an idempotency key (or accept/return), for duplicates

    const ops = [];
    let seq = 0;
    const key = () => `c${seed}-${++seq}`;
    const userOp = (kind, u, path, body, extra = {}) => ({ kind, user: u, token: u.token, path, body, ...extra });

    function newOp() {
      const r = rand();
      const u = pick(users);
      if (r < 0.14) {
        return userOp('topup', u, '/v1/wallet/topups', { amount: int(500, 20000), currency: cur(), idempotency_key: key() });
      }
      if (r < 0.19) {
        return userOp('withdrawal', u, '/v1/wallet/withdrawals',
          { amount: int(1, 4000), currency: cur(), pin: PIN, idempotency_key: key() });
      }
      if (r < 0.38) {
        let v = pick(users);
        while (v === u) v = pick(users);
        const body = { to_user_id: v.id, amount: int(1, 5000), currency: cur(), pin: PIN, idempotency_key: key() };
        if (rand() < 0.5) body.note = `n${seq}`;
        const chat = chats.get(pairKey(u, v));
        if (chat && rand() < 0.6) body.conversation_id = chat;
        return userOp('transfer', u, '/v1/wallet/transfers', body, { to: v });
      }
      if (r < 0.49 && actionable.length > 0) {
        const id = actionable.splice(Math.floor(rand() * actionable.length), 1)[0];
        const tr = transfers.get(id);
        const verb = rand() < 0.7 ? 'accept' : 'return';
        return userOp(verb, tr.to, `/v1/wallet/transfers/${id}/${verb}`, undefined, { transferId: id });
      }
      if (r < 0.56) {
        const direct = rand() < 0.15;
        const count = direct ? 1 : int(1, 8);
        const total = count + int(0, 5000);
        let path = `/v1/conversations/${groupId}/red-packets`;
        let sender = u;
        if (direct) {
          const i = int(0, USERS - 1);
          sender = users[i];
          path = `/v1/conversations/${chats.get(pairKey(users[i], users[(i + 1) % USERS]))}/red-packets`;
        }
        return userOp('packet', sender, path, { total, count, mode: rand() < 0.6 ? 'random' : 'equal', currency: cur(),
          pin: PIN, idempotency_key: key(), ...(rand() < 0.3 ? { greeting: `g${seq}` } : {}) }, { direct });
      }
      if (r < 0.7) {
        // A claim on a recent packet by someone who has not tried it: racing
        // claims on the same packet, some beyond its count.
        const live = packetList.filter((id) => !packets.get(id).empty).slice(-6);
        for (let attempt = 0; live.length > 0 && attempt < 10; attempt++) {
          const id = pick(live);
          const p = packets.get(id);
          const who = p.direct ? users[(p.sender.idx + 1) % USERS] : pick(users);
          if (tried.has(`${who.id}:${id}`)) continue;
          tried.add(`${who.id}:${id}`);
          return userOp('claim', who, `/v1/red-packets/${id}/claim`, { idempotency_key: key() }, { packetId: id });
        }
      }
      if (r < 0.78) {
        const m = pick(merchants);
        const body = { amount: int(100, 6000), currency: cur(), description: `Order ${seq}`, idempotency_key: key() };
        if (rand() < 0.5) body.merchant_order_id = `mo-${seed}-${seq}`;
        return { kind: 'order', m, token: m.apiKey, path: '/v1/merchant/orders', body };
      }
      if (r < 0.9) {
        if (payable.length > 0 && rand() < 0.7) {
          const idx = Math.floor(rand() * payable.length);
          const id = payable[idx];
          const o = orders.get(id);
          // Mostly one payer at a time; now and then a second races the first.
          if (rand() < 0.85) payable.splice(idx, 1);
          let payer = pick(users);
          while (payer === o.m.owner) payer = pick(users);
          return userOp('pay', payer, '/v1/pay',
            { code: o.code, currency: o.currency, pin: PIN, idempotency_key: key() }, { orderId: id });
        }
        const paidOrders = refundableOrders.filter((id) => orders.get(id).code);
        if (paidOrders.length > 0 && rand() < 0.1) {
          // An order paid already, by a late second payer: 409 order_paid, nothing moves.
          const id = pick(paidOrders);
          const o = orders.get(id);
          let payer = pick(users);
          while (payer === o.m.owner) payer = pick(users);
          return userOp('pay', payer, '/v1/pay',
            { code: o.code, currency: o.currency, pin: PIN, idempotency_key: key() }, { orderId: id });
        }
        const m = pick(merchants);
        let payer = pick(users);
        while (payer === m.owner) payer = pick(users);
        return userOp('pay', payer, '/v1/pay',
          { code: m.code, amount: int(1, 4000), currency: cur(), pin: PIN, idempotency_key: key() }, { m, orderId: null });
      }
      if (r < 0.97 && refundableOrders.length > 0) {
        const idx = Math.floor(rand() * refundableOrders.length);
        const id = refundableOrders[idx];
        const o = orders.get(id);
        const amount = o.refundable > 1 && rand() < 0.6 ? int(1, o.refundable - 1) : o.refundable;
        o.refundable -= amount; // reserved until its answer: refunds never race past the payment
        if (o.refundable === 0) refundableOrders.splice(idx, 1);
        const body = { amount, idempotency_key: key(), ...(rand() < 0.5 ? { reason: `r${seq}` } : {}) };
        return { kind: 'refund', m: o.m, token: o.m.apiKey, path: `/v1/merchant/orders/${id}/refunds`, body, orderId: id };
      }
      if (keyed.length > 0) {
        // The same call again, long after its answer (maybe across kills):
        // the first answer, byte for byte, and nothing moves.
        const orig = pick(keyed);
        return { kind: 'dup', orig, token: orig.token, path: orig.path, body: orig.body };
      }
      return userOp('topup', u, '/v1/wallet/topups', { amount: int(500, 20000), currency: 'USD', idempotency_key: key() });
    }

    const fresh = (id, op) => {
      assert.ok(!createdIds.has(id), `${ctx(op)}: id ${id} answered to two operations`);
      createdIds.add(id);
    };
    const isErr = (res, status, code) => res.status === status && res.json?.error?.code === code;
    const unexpected = (op, res) => assert.fail(`${ctx(op)}: unexpected answer ${res.status} ${res.text}`);

    /** Takes the first answer of an operation into the model. */
    function settle(op, res) {
      const b = op.body;
      switch (op.kind) {
        case 'topup': {
          if (res.status !== 201) unexpected(op, res);
          const f = res.json.topup;
          fresh(f.id, op);
          assert.equal(f.status, 'completed', ctx(op));
          assert.equal(f.amount, b.amount);
          add(op.user.id, b.currency, b.amount);
          toppedUp[b.currency] += b.amount;
          break;
        }
        case 'withdrawal': {
          if (res.status === 201) {
            const f = res.json.withdrawal;
            fresh(f.id, op);
            assert.equal(f.status, 'completed', ctx(op));
            add(op.user.id, b.currency, -b.amount);
            withdrawn[b.currency] += b.amount;
          } else if (!isErr(res, 422, 'insufficient_funds') && !isErr(res, 422, 'daily_limit_exceeded')) unexpected(op, res);
          break;
        }
        case 'transfer': {
          if (res.status === 201) {
            const tr = res.json.transfer;
            fresh(tr.id, op);
            assert.equal(tr.amount, b.amount);
            assert.equal(tr.conversation_id, b.conversation_id ?? null, ctx(op));
            assert.equal(tr.status, op.to.auto ? 'completed' : 'pending', ctx(op));
            add(op.user.id, b.currency, -b.amount);
            if (tr.status === 'completed') add(op.to.id, b.currency, b.amount);
            else actionable.push(tr.id);
            transfers.set(tr.id, { from: op.user, to: op.to, amount: b.amount, currency: b.currency, status: tr.status });
          } else if (!isErr(res, 422, 'insufficient_funds') && !isErr(res, 422, 'daily_limit_exceeded')) unexpected(op, res);
          break;
        }
        case 'accept':
        case 'return': {
          if (res.status !== 200) unexpected(op, res);
          const tr = transfers.get(op.transferId);
          const status = op.kind === 'accept' ? 'completed' : 'returned';
          assert.equal(res.json.transfer.status, status, ctx(op));
          assert.equal(tr.status, 'pending', `${ctx(op)}: a transfer settled twice`);
          tr.status = status;
          add(op.kind === 'accept' ? tr.to.id : tr.from.id, tr.currency, tr.amount);
          break;
        }
        case 'packet': {
          if (res.status === 201) {
            const p = res.json.red_packet;
            fresh(p.id, op);
            assert.equal(p.total, b.total);
            assert.equal(p.status, 'active');
            add(op.user.id, b.currency, -b.total);
            packets.set(p.id, { sender: op.user, total: b.total, count: b.count, currency: b.currency, direct: op.direct,
              claims: new Map(), empty: false });
            packetList.push(p.id);
          } else if (!isErr(res, 422, 'insufficient_funds') && !isErr(res, 422, 'daily_limit_exceeded')) unexpected(op, res);
          break;
        }
        case 'claim': {
          const p = packets.get(op.packetId);
          if (res.status === 200) {
            const amount = res.json.amount;
            assert.ok(Number.isInteger(amount) && amount >= 1, ctx(op));
            assert.equal(res.json.currency, p.currency);
            assert.ok(!p.claims.has(op.user.id), `${ctx(op)}: a second share for one user`);
            p.claims.set(op.user.id, amount);
            add(op.user.id, p.currency, amount);
            if (p.claims.size === p.count) p.empty = true;
          } else if (isErr(res, 409, 'red_packet_empty')) {
            p.empty = true;
          } else unexpected(op, res);
          break;
        }
        case 'order': {
          if (res.status !== 201) unexpected(op, res);
          const o = res.json.order;
          fresh(o.id, op);
          assert.equal(o.status, 'pending');
          assert.equal(o.amount, b.amount);
          assert.equal(o.merchant_order_id, b.merchant_order_id ?? null);
          orders.set(o.id, { m: op.m, code: o.code, amount: b.amount, currency: b.currency, payer: null, paymentId: null,
            refunded: 0, refundable: 0 });
          payable.push(o.id);
          break;
        }
        case 'pay': {
          if (res.status === 201) {
            const pm = res.json.payment;
            fresh(pm.id, op);
            assert.equal(pm.status, 'completed');
            let o;
            if (op.orderId) {
              o = orders.get(op.orderId);
              assert.equal(pm.order_id, op.orderId, ctx(op));
              assert.equal(o.payer, null, `${ctx(op)}: order ${op.orderId} paid twice`);
            } else {
              assert.ok(!orders.has(pm.order_id), ctx(op));
              o = { m: op.m, code: null, amount: b.amount, currency: b.currency, payer: null, paymentId: null, refunded: 0, refundable: 0 };
              orders.set(pm.order_id, o);
            }
            assert.equal(pm.amount, o.amount, ctx(op));
            assert.equal(pm.merchant.id, o.m.id, ctx(op));
            o.payer = op.user;
            o.paymentId = pm.id;
            o.refundable = o.amount;
            add(op.user.id, o.currency, -o.amount);
            add(o.m.owner.id, o.currency, o.amount);
            refundableOrders.push(pm.order_id);
            const i = payable.indexOf(pm.order_id);
            if (i >= 0) payable.splice(i, 1);
          } else if (isErr(res, 409, 'order_paid')) {
            assert.ok(op.orderId, ctx(op));
            op.lostRace = true; // checked at the end: someone else paid it
          } else if (isErr(res, 422, 'insufficient_funds') || isErr(res, 422, 'daily_limit_exceeded')) {
            const o = op.orderId && orders.get(op.orderId);
            if (o && o.payer === null && !payable.includes(op.orderId)) payable.push(op.orderId);
          } else unexpected(op, res);
          break;
        }
        case 'refund': {
          const o = orders.get(op.orderId);
          if (res.status === 201) {
            const rf = res.json.refund;
            fresh(rf.id, op);
            assert.equal(rf.amount, b.amount);
            assert.equal(rf.status, 'completed');
            o.refunded += b.amount;
            assert.ok(o.refunded <= o.amount, `${ctx(op)}: refunded more than paid`);
            add(o.m.owner.id, o.currency, -b.amount);
            add(o.payer.id, o.currency, b.amount);
          } else if (isErr(res, 422, 'insufficient_funds')) {
            if (o.refundable === 0) refundableOrders.push(op.orderId);
            o.refundable += b.amount;
          } else unexpected(op, res);
          break;
        }
        default:
          assert.fail(`unknown kind ${op.kind}`);
      }
      if (op.body?.idempotency_key || op.kind === 'accept' || op.kind === 'return') keyed.push(op);
    }

    // --- The run: epochs of one server's life, each but the last ended by kill -9.
    const stats = { answered: 0, lost: 0, retried: 0, strays: 0, kills: 0, outcomes: {} };
    const retry = []; // operations whose answer was lost, in the order they were made
    let made = 0;

    /** One try of an operation on srv: true with an answer, false when the answer was lost. */
    async function attempt(s, op) {
      let res;
      try {
        res = await s.call('POST', op.path, { token: op.token, body: op.body });
      } catch {
        return false;
      }
      if (res.status === 503) return false; // busy: not an answer, try again
      assert.ok(res.status < 500, `${ctx(op)}: server error ${res.status} ${res.text}\n${s.logs().slice(-4000)}`);
      op.tries = (op.tries ?? 0) + 1;
      if (op.kind === 'dup') {
        assert.equal(res.status, op.orig.answer.status, `${ctx(op)} of ${ctx(op.orig)}: another status`);
        assert.equal(res.text, op.orig.answer.text, `${ctx(op)} of ${ctx(op.orig)}: another answer`);
        op.answer = { status: res.status, text: res.text };
      } else {
        op.answer = { status: res.status, text: res.text, json: res.json };
        settle(op, res);
      }
      const o = `${op.kind} ${res.status}${res.json?.error ? ` ${res.json.error.code}` : ''}`;
      stats.outcomes[o] = (stats.outcomes[o] ?? 0) + 1;
      stats.answered++;
      return true;
    }

    const kills = int(4, 6);
    const killPoints = Array.from({ length: kills }, () => int(Math.floor(OPS * 0.05), Math.floor(OPS * 0.95))).sort((a, b) => a - b);
    for (let epoch = 0; epoch <= kills; epoch++) {
      const killAt = epoch < kills ? killPoints[epoch] : Infinity;
      let killing = null;
      const lostNow = [];
      const worker = async () => {
        for (;;) {
          if (killing) return;
          let op = retry.shift();
          if (op) stats.retried++;
          else if (made < OPS) {
            op = newOp();
            op.seq = ++made;
            ops.push(op);
          } else return;
          if (!(await attempt(srv, op))) {
            stats.lost++;
            if (killing) lostNow.push(op);
            else {
              // Lost without a kill: only acceptable while the server lives.
              assert.equal(srv.child.exitCode, null, `plazad died by itself (seed ${seed}):\n${srv.logs().slice(-8000)}`);
              assert.equal(srv.child.signalCode, null, `plazad died by itself (seed ${seed}):\n${srv.logs().slice(-8000)}`);
              stats.strays++;
              retry.push(op);
            }
          }
          if (stats.answered >= killAt && !killing) killing = srv.kill9();
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      if (!killing) break;
      await killing;
      stats.kills++;
      srv = await startServer({ dataDir: dir, env });
      // The lost calls go first, with their keys and bodies unchanged.
      retry.unshift(...lostNow.sort((a, b) => a.seq - b.seq));
    }
    assert.equal(retry.length, 0);
    assert.ok(ops.every((op) => op.answer), 'an operation without an answer');

    // Acknowledged calls once more, after every restart: the first answer, and nothing moves.
    const sample = keyed.filter(() => rand() < 0.15);
    for (let i = 0; i < sample.length; i += CONCURRENCY) {
      await Promise.all(sample.slice(i, i + CONCURRENCY).map(async (orig) => {
        const res = await srv.call('POST', orig.path, { token: orig.token, body: orig.body });
        assert.equal(res.status, orig.answer.status, `replay of ${ctx(orig)}: ${res.text}`);
        assert.equal(res.text, orig.answer.text, `replay of ${ctx(orig)}`);
      }));
    }

    // --- What the server holds, against the model.
    const inEscrow = { USD: 0, EUR: 0 };
    for (const [id, tr] of transfers) {
      const res = await srv.call('GET', `/v1/wallet/transfers/${id}`, { token: tr.from.token });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.transfer.status, tr.status, `transfer ${id} (seed ${seed})`);
      assert.equal(res.json.transfer.amount, tr.amount);
      if (tr.status === 'pending') inEscrow[tr.currency] += tr.amount;
    }
    for (const [id, p] of packets) {
      const res = await srv.call('GET', `/v1/red-packets/${id}`, { token: p.sender.token });
      assert.equal(res.status, 200, res.text);
      const rp = res.json.red_packet;
      const onRecord = new Map(rp.claims.map((c) => [c.user.id, c.amount]));
      assert.equal(onRecord.size, rp.claims.length, `someone opened packet ${id} twice (seed ${seed})`);
      // Every share on record was answered to its claimant with its amount, and no answered share is missing.
      assert.deepEqual([...onRecord].sort(), [...p.claims].sort(), `shares of packet ${id} (seed ${seed})`);
      const paid = rp.claims.reduce((x, c) => x + c.amount, 0);
      assert.equal(rp.claimed_amount, paid);
      assert.ok(rp.claims.length <= p.count && paid <= p.total, `packet ${id} paid beyond its count or total`);
      assert.equal(rp.remaining_count, p.count - rp.claims.length);
      if (rp.claims.length === p.count) {
        assert.equal(paid, p.total, `finished packet ${id} paid ${paid} of ${p.total}`);
        assert.equal(rp.status, 'finished');
      } else {
        assert.equal(rp.status, 'active');
        inEscrow[p.currency] += p.total - paid;
      }
      if (rp.mode === 'equal') {
        for (const c of rp.claims) assert.ok(c.amount === Math.floor(p.total / p.count) || c.amount === Math.floor(p.total / p.count) + 1);
      }
    }
    for (const op of ops) {
      if (op.kind === 'claim' && isErr(op.answer, 409, 'red_packet_empty')) {
        const p = packets.get(op.packetId);
        assert.equal(p.claims.size, p.count, `${ctx(op)}: "empty" while shares were left`);
      }
      if (op.kind === 'pay' && op.lostRace) {
        const o = orders.get(op.orderId);
        assert.ok(o.payer && ops.some((x) => x.kind === 'pay' && x.orderId === op.orderId && x.answer.status === 201),
          `${ctx(op)}: order_paid but nobody paid it`);
      }
    }
    for (const [id, o] of orders) {
      const res = await srv.call('GET', `/v1/merchant/orders/${id}`, { token: o.m.apiKey });
      assert.equal(res.status, 200, res.text);
      const so = res.json.order;
      assert.equal(so.paid_amount, o.payer ? o.amount : 0, `order ${id} paid_amount (seed ${seed})`);
      assert.equal(so.refunded_amount, o.refunded, `order ${id} refunded_amount (seed ${seed})`);
      assert.equal(so.payment_id, o.paymentId, `order ${id} payment (seed ${seed})`);
      assert.equal(so.status, !o.payer ? 'pending' : o.refunded === o.amount ? 'refunded' : 'paid', `order ${id} (seed ${seed})`);
    }
    const inWallets = { USD: 0, EUR: 0 };
    for (const u of users) {
      const res = await srv.call('GET', '/v1/wallet', { token: u.token });
      assert.equal(res.status, 200, res.text);
      for (const c of CURRENCIES) {
        const got = res.json.balances.find((x) => x.currency === c).available;
        assert.equal(got, bal.get(`${u.id}:${c}`) ?? 0, `${c} balance of user ${u.idx} ${u.username} (seed ${seed})`);
        inWallets[c] += got;
      }
    }
    for (const c of CURRENCIES) {
      assert.equal(inWallets[c] + inEscrow[c], toppedUp[c] - withdrawn[c], `${c} in the system (seed ${seed})`);
    }

    const count = (kind, status) => ops.filter((o) => o.kind === kind && (!status || o.answer.status === status)).length;
    const atOnce = ops.filter((o) => o.kind === 'transfer' && o.answer.status === 201 && !o.body.conversation_id &&
      o.answer.json?.transfer?.status === 'completed').length;
    t.diagnostic(`seed ${seed}: ${ops.length} operations, ${stats.kills} kills, ${stats.lost} answers lost, ${stats.retried} retries, ` +
      `${stats.strays} lost without a kill, ${sample.length} replays, ${transfers.size} transfers, ${packets.size} packets, ` +
      `${orders.size} orders, ${atOnce} transfers completed at once outside a chat`);
    t.diagnostic(JSON.stringify(stats.outcomes));
    // The run tested what it claims to.
    assert.equal(stats.kills, kills);
    assert.ok(stats.lost >= kills, `only ${stats.lost} answers were lost: the kills cut little`);
    assert.ok(count('transfer', 201) > 50 && count('accept', 200) > 10 && count('return', 200) > 3, 'too few transfers ran');
    // Transfers completed at once outside a chat: those the send log makes, among every other kind of money, unless
    // its checks send them to the writer. (The writer's jobs apply what is logged first, so a kill here rarely finds
    // one only in the log: wallet_sendlog.test.mjs holds the apply back for that.)
    assert.ok(atOnce > 10, `only ${atOnce} transfers were completed at once outside a chat`);
    assert.ok(count('packet', 201) > 20 && count('claim', 200) > 50, 'too few red packets ran');
    assert.ok(count('pay', 201) > 30 && count('refund', 201) > 10, 'too few payments ran');
    assert.ok(count('withdrawal', 201) > 10, 'too few withdrawals ran');
    assert.ok(count('dup') > 10, 'too few duplicates ran');

    await srv.stop({ keepData: true });
    stopped = true;
    const v = spawnSync(PLAZAD, ['ledger', 'verify', '--data-dir', dir], { encoding: 'utf8' });
    assert.equal(v.status, 0, `ledger verify (seed ${seed}): ${v.stdout}${v.stderr}`);
  } finally {
    if (!stopped) await srv.kill9();
    if (process.env.WALLET_CHAOS_KEEP) console.log(`# data dir kept: ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
});

test('a debit refused for the daily limit keeps that answer for its key, even once the limit is lifted', { timeout: 60000 }, async () => {
  // Found by the test above: red packets and QR payments checked the limit
  // only in pz_wallet_move, which rolls the job back, so the refusal was not
  // stored and a late retry with the key moved the money after all.
  let srv = await startServer({ env: { PLAZA_DAILY_LIMITS: '0:1000' } });
  const dir = srv.dir;
  try {
    const [payer, shopOwner, friend] = [await register(srv), await register(srv), await register(srv)];
    for (const u of [payer, shopOwner, friend]) {
      assert.equal((await srv.call('PUT', '/v1/wallet/pin', { token: u.token, body: { pin: PIN, password: PASSWORD } })).status, 204);
    }
    const top = await srv.call('POST', '/v1/wallet/topups', { token: payer.token, body: { amount: 5000, currency: 'USD', idempotency_key: 'dl-top' } });
    assert.equal(top.status, 201, top.text);
    const req = await srv.call('POST', '/v1/contacts/requests', { token: payer.token, body: { user_id: friend.user.id } });
    assert.equal((await srv.call('POST', `/v1/contacts/requests/${req.json.request.id}/accept`, { token: friend.token })).status, 200);
    const chat = await srv.call('POST', '/v1/conversations', { token: payer.token, body: { type: 'direct', user_id: friend.user.id } });
    assert.equal(chat.status, 201, chat.text);
    const shop = await srv.call('POST', '/v1/merchants', { token: shopOwner.token, body: { name: 'Limits' } });
    assert.equal(shop.status, 201, shop.text);

    const calls = [
      ['/v1/pay', { code: shop.json.merchant.payment_code, amount: 1500, currency: 'USD', pin: PIN, idempotency_key: 'dl-pay' }],
      [`/v1/conversations/${chat.json.conversation.id}/red-packets`,
        { total: 1500, count: 1, mode: 'equal', currency: 'USD', pin: PIN, idempotency_key: 'dl-packet' }],
      ['/v1/wallet/transfers', { to_user_id: friend.user.id, amount: 1500, currency: 'USD', pin: PIN, idempotency_key: 'dl-transfer' }],
      ['/v1/wallet/withdrawals', { amount: 1500, currency: 'USD', pin: PIN, idempotency_key: 'dl-withdrawal' }],
    ];
    const first = [];
    for (const [p, body] of calls) {
      const res = await srv.call('POST', p, { token: payer.token, body });
      assert.equal(res.status, 422, `${p}: ${res.text}`);
      assert.equal(res.json.error.code, 'daily_limit_exceeded', `${p}: ${res.text}`);
      first.push(res.text);
    }
    // The limit is lifted (a new tier, or the next day): the keys still answer their refusals.
    await srv.stop({ keepData: true });
    srv = await startServer({ dataDir: dir, env: { PLAZA_DAILY_LIMITS: '0:0' } });
    for (const [i, [p, body]] of calls.entries()) {
      const res = await srv.call('POST', p, { token: payer.token, body });
      assert.equal(res.status, 422, `retry of ${p} after the limit was lifted: ${res.text}`);
      assert.equal(res.text, first[i], `retry of ${p}`);
    }
    for (const [u, want] of [[payer, 5000], [shopOwner, 0], [friend, 0]]) {
      const w = await srv.call('GET', '/v1/wallet', { token: u.token });
      assert.equal(w.json.balances.find((b) => b.currency === 'USD').available, want);
    }
    await srv.stop({ keepData: true });
    srv = null;
    const v = spawnSync(PLAZAD, ['ledger', 'verify', '--data-dir', dir], { encoding: 'utf8' });
    assert.equal(v.status, 0, `ledger verify: ${v.stdout}${v.stderr}`);
  } finally {
    if (srv) await srv.stop({ keepData: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
