// API tests of red packets (send, claim, read, expiry, concurrent claims) and of transfer cards in chats with their transfer.updated events.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, PLAZAD, expectError, register, startServer } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

let keyCounter = 0;
const newKey = () => `rp-${process.pid}-${++keyCounter}`;

const setPin = (s, who, pin = '123456') =>
  s.call('PUT', '/v1/wallet/pin', { token: who.token, body: { pin, password: PASSWORD } });
const topup = (s, who, amount, currency = 'USD') =>
  s.call('POST', '/v1/wallet/topups', { token: who.token, body: { amount, currency, idempotency_key: newKey() } });
const balance = async (s, who, currency = 'USD') => {
  const res = await s.call('GET', '/v1/wallet', { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json.balances.find((b) => b.currency === currency).available;
};

async function funded(s, amount = 0) {
  const who = await register(s);
  assert.equal((await setPin(s, who)).status, 204);
  if (amount) assert.equal((await topup(s, who, amount)).status, 201);
  return who;
}

async function befriend(s, a, b) {
  const r = await s.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
  assert.equal(r.status, 201, r.text);
  const ok = await s.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token });
  assert.equal(ok.status, 200, ok.text);
}

async function direct(s, a, b) {
  await befriend(s, a, b);
  const res = await s.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.user.id } });
  assert.ok(res.status === 201 || res.status === 200, res.text);
  return res.json.conversation.id;
}

/** A funded owner and n members (contacts of the owner) in a group. */
async function group(s, n, amount = 100000) {
  const owner = await funded(s, amount);
  const members = [];
  for (let i = 0; i < n; i++) {
    const m = await register(s);
    await befriend(s, owner, m);
    members.push(m);
  }
  const res = await s.call('POST', '/v1/conversations', {
    token: owner.token, body: { type: 'group', title: 'Family', member_ids: members.map((m) => m.user.id) },
  });
  assert.equal(res.status, 201, res.text);
  return { owner, members, id: res.json.conversation.id };
}

const packet = (s, who, convId, body) => s.call('POST', `/v1/conversations/${convId}/red-packets`, {
  token: who.token,
  body: { total: 1000, count: 5, mode: 'random', currency: 'USD', pin: '123456', idempotency_key: newKey(), ...body },
});
const claim = (s, who, id, body) => s.call('POST', `/v1/red-packets/${id}/claim`, { token: who.token, body });
const getPacket = (s, who, id) => s.call('GET', `/v1/red-packets/${id}`, { token: who.token });
const events = async (s, who, type) => {
  const res = await s.call('GET', '/v1/sync?since=0&limit=1000', { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json.events.filter((e) => e.type === type);
};
const verify = (dir) => spawnSync(PLAZAD, ['ledger', 'verify', '--data-dir', dir], { encoding: 'utf8' });

describe('red packets in a group', () => {
  test('50 members race for a 10-share packet: exactly 10 get a share, the shares add up to the total', { timeout: 120000 }, async () => {
    const g = await group(srv, 50);
    const res = await packet(srv, g.owner, g.id, { total: 1000, count: 10, greeting: '新年快乐' });
    assert.equal(res.status, 201, res.text);
    const rp = res.json.red_packet;
    assert.equal(rp.total, 1000);
    assert.equal(rp.count, 10);
    assert.equal(rp.mode, 'random');
    assert.equal(rp.status, 'active');
    assert.equal(rp.remaining_count, 10);
    assert.equal(rp.greeting, '新年快乐');
    assert.equal(rp.sender_id, g.owner.user.id);
    assert.equal(rp.conversation_id, g.id);
    assert.equal(Date.parse(rp.expires_at) - Date.parse(rp.created_at), 24 * 3600 * 1000);
    // The money left the sender at once.
    assert.equal(await balance(srv, g.owner), 100000 - 1000);

    // The card is in the chat, for every member, without the amounts.
    const hist = await srv.call('GET', `/v1/conversations/${g.id}/messages`, { token: g.members[0].token });
    const card = hist.json.messages.find((m) => m.type === 'red_packet');
    assert.ok(card, hist.text);
    assert.deepEqual(card.body, { type: 'red_packet', red_packet_id: rp.id, greeting: '新年快乐', count: 10, mode: 'random', currency: 'USD' });
    assert.equal(card.sender_id, g.owner.user.id);
    const news = await events(srv, g.members[7], 'message.new');
    assert.ok(news.some((e) => e.message.body?.red_packet_id === rp.id));

    const answers = await Promise.all(g.members.map((m) => claim(srv, m, rp.id)));
    const won = answers.filter((a) => a.status === 200);
    assert.equal(won.length, 10, answers.map((a) => a.status).join(','));
    for (const a of answers.filter((x) => x.status !== 200)) expectError(assert, a, 409, 'red_packet_empty');
    const amounts = won.map((a) => a.json.amount);
    assert.equal(amounts.reduce((x, y) => x + y, 0), 1000);
    assert.ok(amounts.every((v) => Number.isInteger(v) && v >= 1));
    for (const a of won) assert.equal(a.json.currency, 'USD');

    // Each winner's balance holds their share; nobody else got anything.
    let inWallets = 0;
    for (let i = 0; i < g.members.length; i++) {
      const b = await balance(srv, g.members[i]);
      assert.equal(b, answers[i].status === 200 ? answers[i].json.amount : 0);
      inWallets += b;
    }
    assert.equal(inWallets, 1000);

    const view = await getPacket(srv, g.members[3], rp.id);
    assert.equal(view.status, 200, view.text);
    const v = view.json.red_packet;
    assert.equal(v.status, 'finished');
    assert.equal(v.remaining_count, 0);
    assert.equal(v.claims.length, 10);
    assert.equal(v.claims.reduce((x, c) => x + c.amount, 0), 1000);
    const best = Math.max(...v.claims.map((c) => c.amount));
    assert.equal(v.luckiest_user_id, v.claims.find((c) => c.amount === best).user.id);
    for (const c of v.claims) assert.equal(typeof c.user.username, 'string');

    // A winner who tries again is told so.
    const winner = g.members[answers.findIndex((a) => a.status === 200)];
    expectError(assert, await claim(srv, winner, rp.id), 409, 'already_claimed');

    // The sender's stream says who got what.
    const got = await events(srv, g.owner, 'red_packet.claimed');
    assert.equal(got.length, 10);
    assert.equal(got.reduce((x, e) => x + e.amount, 0), 1000);
    for (const e of got) {
      assert.equal(e.red_packet_id, rp.id);
      assert.equal(e.amount, v.claims.find((c) => c.user.id === e.user_id).amount);
    }
  });

  test('equal mode: the remainder goes one unit each to the first claimants; the sender may claim too', async () => {
    const g = await group(srv, 2);
    const res = await packet(srv, g.owner, g.id, { total: 11, count: 3, mode: 'equal' });
    assert.equal(res.status, 201, res.text);
    const id = res.json.red_packet.id;
    assert.equal(res.json.red_packet.greeting, 'Best wishes');
    const a = await claim(srv, g.members[1], id);
    const b = await claim(srv, g.owner, id);
    const c = await claim(srv, g.members[0], id);
    assert.deepEqual([a.json.amount, b.json.amount, c.json.amount], [4, 4, 3]);
    assert.equal(c.json.red_packet.status, 'finished');
    const v = (await getPacket(srv, g.owner, id)).json.red_packet;
    assert.equal(v.luckiest_user_id, null); // equal shares: nobody is luckier
    assert.equal(await balance(srv, g.owner), 100000 - 11 + 4);
  });

  test('a stranger can neither send, claim nor read; a member who left cannot claim', async () => {
    const g = await group(srv, 2);
    const stranger = await funded(srv, 5000);
    expectError(assert, await packet(srv, stranger, g.id), 403, 'not_member');
    assert.equal(await balance(srv, stranger), 5000);
    const rp = (await packet(srv, g.owner, g.id)).json.red_packet;
    expectError(assert, await claim(srv, stranger, rp.id), 403, 'not_member');
    expectError(assert, await getPacket(srv, stranger, rp.id), 403, 'not_member');
    const leave = await srv.call('DELETE', `/v1/conversations/${g.id}/members/${g.members[0].user.id}`, { token: g.members[0].token });
    assert.ok(leave.status === 200 || leave.status === 204, leave.text);
    expectError(assert, await claim(srv, g.members[0], rp.id), 403, 'not_member');
    expectError(assert, await claim(srv, g.members[1], '12345'), 404, 'not_found');
    expectError(assert, await srv.call('POST', '/v1/red-packets/abc/claim', { token: g.members[1].token }), 400, 'invalid_request');
    expectError(assert, await packet(srv, g.owner, '99999'), 404, 'not_found');
  });
});

describe('red packet rules', () => {
  test('bad input gets a clear error and not one cent moves', async () => {
    const g = await group(srv, 1, 5000);
    const bad = [
      [{ total: 0 }, 'invalid_request'], [{ total: -5 }, 'invalid_request'], [{ total: 1.5 }, 'invalid_request'],
      [{ total: '100' }, 'invalid_request'], [{ total: null }, 'invalid_request'],
      [{ total: 1000000000001 }, 'invalid_request'], [{ count: 0 }, 'invalid_request'], [{ count: 101 }, 'invalid_request'],
      [{ count: 2.5 }, 'invalid_request'], [{ count: '3' }, 'invalid_request'], [{ total: 4, count: 5 }, 'invalid_request'],
      [{ mode: 'lucky' }, 'invalid_request'], [{ mode: undefined }, 'invalid_request'], [{ currency: 'XYZ' }, 'unknown_currency'],
      [{ currency: 5 }, 'invalid_request'], [{ greeting: 'x'.repeat(61) }, 'invalid_request'],
      [{ greeting: 'a\u0007b' }, 'invalid_request'], [{ greeting: 7 }, 'invalid_request'], [{ pin: '12345' }, 'invalid_request'],
      [{ pin: 123456 }, 'invalid_request'], [{ idempotency_key: '' }, 'invalid_request'], [{ idempotency_key: undefined }, 'invalid_request'],
    ];
    for (const [body, code] of bad) {
      expectError(assert, await packet(srv, g.owner, g.id, body), 400, code);
    }
    const raw = (total) => srv.call('POST', `/v1/conversations/${g.id}/red-packets`, {
      token: g.owner.token,
      raw: `{"total":${total},"count":1,"mode":"equal","currency":"USD","pin":"123456","idempotency_key":"${newKey()}"}`,
    });
    expectError(assert, await raw('1e3'), 400, 'invalid_request');
    expectError(assert, await raw('100.0'), 400, 'invalid_request');
    expectError(assert, await raw('99999999999999999999999'), 400, 'malformed_json');
    // 60 characters (not bytes) is fine.
    assert.equal((await packet(srv, g.owner, g.id, { total: 60, count: 1, greeting: '福'.repeat(60) })).status, 201);
    assert.equal(await balance(srv, g.owner), 5000 - 60);
    // Not enough money, a wrong PIN, no PIN: refused, nothing moves.
    expectError(assert, await packet(srv, g.owner, g.id, { total: 5000 }), 422, 'insufficient_funds');
    expectError(assert, await packet(srv, g.owner, g.id, { pin: '000000' }), 403, 'wrong_pin');
    const nopin = await register(srv);
    await befriend(srv, g.owner, nopin);
    const dm = (await srv.call('POST', '/v1/conversations', { token: nopin.token, body: { type: 'direct', user_id: g.owner.user.id } })).json.conversation.id;
    expectError(assert, await packet(srv, nopin, dm, { count: 1 }), 403, 'pin_not_set');
    assert.equal(await balance(srv, g.owner), 5000 - 60);
    const hist = await srv.call('GET', `/v1/conversations/${g.id}/messages`, { token: g.owner.token });
    assert.equal(hist.json.messages.filter((m) => m.type === 'red_packet').length, 1);
  });

  test('idempotency: a retry gets the first answer and pays once; the key with other parameters is refused', async () => {
    const g = await group(srv, 1, 5000);
    const key = newKey();
    const first = await packet(srv, g.owner, g.id, { total: 300, count: 1, idempotency_key: key });
    assert.equal(first.status, 201, first.text);
    const again = await packet(srv, g.owner, g.id, { total: 300, count: 1, idempotency_key: key });
    assert.equal(again.status, 201);
    assert.equal(again.text, first.text);
    assert.equal(await balance(srv, g.owner), 4700);
    expectError(assert, await packet(srv, g.owner, g.id, { total: 301, count: 1, idempotency_key: key }), 409, 'idempotency_key_reused');
    const hist = await srv.call('GET', `/v1/conversations/${g.id}/messages`, { token: g.owner.token });
    assert.equal(hist.json.messages.filter((m) => m.type === 'red_packet').length, 1);

    // A claim with a key: its retry is the first answer, not already_claimed.
    const ck = newKey();
    const c1 = await claim(srv, g.members[0], first.json.red_packet.id, { idempotency_key: ck });
    assert.equal(c1.status, 200, c1.text);
    assert.equal(c1.json.amount, 300);
    const c2 = await claim(srv, g.members[0], first.json.red_packet.id, { idempotency_key: ck });
    assert.equal(c2.text, c1.text);
    expectError(assert, await claim(srv, g.members[0], first.json.red_packet.id, { idempotency_key: newKey() }), 409, 'already_claimed');
    expectError(assert, await claim(srv, g.members[0], first.json.red_packet.id, { idempotency_key: 7 }), 400, 'invalid_request');
    assert.equal(await balance(srv, g.members[0]), 300);
  });

  test('in a direct chat: one share, only the other person may open it', async () => {
    const ann = await funded(srv, 1000);
    const bob = await register(srv);
    const eve = await register(srv);
    const conv = await direct(srv, ann, bob);
    expectError(assert, await packet(srv, ann, conv, { total: 100, count: 2 }), 400, 'invalid_request');
    const res = await packet(srv, ann, conv, { total: 100, count: 1, greeting: 'for you' });
    assert.equal(res.status, 201, res.text);
    const id = res.json.red_packet.id;
    expectError(assert, await claim(srv, ann, id), 403, 'not_recipient');
    expectError(assert, await claim(srv, eve, id), 403, 'not_member');
    const got = await claim(srv, bob, id);
    assert.equal(got.status, 200, got.text);
    assert.equal(got.json.amount, 100);
    assert.equal(got.json.red_packet.status, 'finished');
    assert.equal(await balance(srv, bob), 100);
    assert.equal(await balance(srv, ann), 900);
    // Blocked: no packet.
    assert.equal((await srv.call('POST', '/v1/blocks', { token: bob.token, body: { user_id: ann.user.id } })).status, 201);
    expectError(assert, await packet(srv, ann, conv, { total: 100, count: 1 }), 403, 'blocked');
    assert.equal(await balance(srv, ann), 900);
  });
});

describe('transfer cards in chats', () => {
  test('a transfer into a direct chat posts a card, and each change reaches both streams', async () => {
    const ann = await funded(srv, 1000);
    const bob = await register(srv);
    const conv = await direct(srv, ann, bob);
    const res = await srv.call('POST', '/v1/wallet/transfers', {
      token: ann.token,
      body: { to_user_id: bob.user.id, amount: 250, currency: 'USD', pin: '123456', idempotency_key: newKey(), note: 'lunch', conversation_id: conv },
    });
    assert.equal(res.status, 201, res.text);
    const t = res.json.transfer;
    assert.equal(t.conversation_id, conv);
    const hist = await srv.call('GET', `/v1/conversations/${conv}/messages`, { token: bob.token });
    const card = hist.json.messages.find((m) => m.type === 'transfer');
    assert.deepEqual(card.body, { type: 'transfer', transfer_id: t.id, amount: 250, currency: 'USD', note: 'lunch', status: 'pending' });
    assert.equal(card.sender_id, ann.user.id);

    assert.equal((await srv.call('POST', `/v1/wallet/transfers/${t.id}/accept`, { token: bob.token })).status, 200);
    // Accepting again changes nothing, and says nothing new.
    assert.equal((await srv.call('POST', `/v1/wallet/transfers/${t.id}/accept`, { token: bob.token })).status, 200);
    for (const who of [ann, bob]) {
      const ups = (await events(srv, who, 'transfer.updated')).filter((e) => e.transfer.id === t.id);
      assert.deepEqual(ups.map((e) => e.transfer.status), ['pending', 'completed']);
    }

    // Returned: both hear it too.
    const t2 = (await srv.call('POST', '/v1/wallet/transfers', {
      token: ann.token,
      body: { to_user_id: bob.user.id, amount: 50, currency: 'USD', pin: '123456', idempotency_key: newKey(), conversation_id: conv },
    })).json.transfer;
    assert.equal((await srv.call('POST', `/v1/wallet/transfers/${t2.id}/return`, { token: bob.token })).status, 200);
    const ups = (await events(srv, ann, 'transfer.updated')).filter((e) => e.transfer.id === t2.id);
    assert.deepEqual(ups.map((e) => e.transfer.status), ['pending', 'returned']);
    assert.equal(await balance(srv, ann), 750);
  });

  test('conversation_id must be the direct chat of sender and receiver; nothing moves otherwise', async () => {
    const ann = await funded(srv, 1000);
    const bob = await register(srv);
    const cat = await register(srv);
    const g = await group(srv, 1);
    const other = await direct(srv, ann, cat);
    await direct(srv, ann, bob);
    const grp = await srv.call('POST', '/v1/conversations', { token: ann.token, body: { type: 'group', title: 'x', member_ids: [bob.user.id, cat.user.id] } });
    for (const conv of [other, grp.json.conversation.id, g.id, '424242', 'abc']) {
      const res = await srv.call('POST', '/v1/wallet/transfers', {
        token: ann.token,
        body: { to_user_id: bob.user.id, amount: 10, currency: 'USD', pin: '123456', idempotency_key: newKey(), conversation_id: conv },
      });
      expectError(assert, res, 400, 'invalid_request');
    }
    assert.equal(await balance(srv, ann), 1000);
  });
});

test('expiry: what is left returns to the sender, claims get 410, transfers refunded tell both sides; the ledger verifies', { timeout: 60000 }, async () => {
  const s = await startServer({ env: { PLAZA_TEST_RED_PACKET_TTL_MS: '1500', PLAZA_TEST_TRANSFER_TTL_MS: '1500' } });
  try {
    const g = await group(s, 2, 1000);
    const rp = (await packet(s, g.owner, g.id, { total: 300, count: 3, mode: 'equal' })).json.red_packet;
    const left = (await packet(s, g.owner, g.id, { total: 40, count: 2 })).json.red_packet;
    assert.equal((await claim(s, g.members[0], rp.id)).json.amount, 100);
    const ann = await funded(s, 500);
    const bob = await register(s);
    const conv = await direct(s, ann, bob);
    const t = (await s.call('POST', '/v1/wallet/transfers', {
      token: ann.token,
      body: { to_user_id: bob.user.id, amount: 70, currency: 'USD', pin: '123456', idempotency_key: newKey(), conversation_id: conv },
    })).json.transfer;
    assert.equal(await balance(s, g.owner), 1000 - 340);

    // A plain `plazad ledger verify` of a copy would need the server
    // stopped; the escrow of active packets is checked at the end.
    let view;
    for (let i = 0; i < 100; i++) {
      await sleep(100);
      view = (await getPacket(s, g.owner, rp.id)).json.red_packet;
      if (view.status === 'refunded' && (await getPacket(s, g.owner, left.id)).json.red_packet.status === 'refunded') break;
    }
    assert.equal(view.status, 'refunded');
    assert.equal(view.remaining_count, 2);
    expectError(assert, await claim(s, g.members[1], rp.id), 410, 'red_packet_expired');
    expectError(assert, await claim(s, g.members[0], rp.id), 409, 'already_claimed');
    assert.equal(await balance(s, g.owner), 1000 - 100);
    assert.equal(await balance(s, g.members[1]), 0);
    const hist = (await s.call('GET', '/v1/wallet/transactions', { token: g.owner.token })).json.transactions;
    assert.deepEqual(hist.filter((x) => x.type === 'red_packet_refund').map((x) => x.amount).sort(), [200, 40]);

    for (let i = 0; i < 100; i++) {
      const now = (await s.call('GET', `/v1/wallet/transfers/${t.id}`, { token: ann.token })).json.transfer;
      if (now.status === 'expired') break;
      await sleep(100);
    }
    for (const who of [ann, bob]) {
      const ups = (await events(s, who, 'transfer.updated')).filter((e) => e.transfer.id === t.id);
      assert.deepEqual(ups.map((e) => e.transfer.status), ['pending', 'expired']);
    }
    assert.equal(await balance(s, ann), 500);

    // One more active packet stays in escrow across the check.
    assert.equal((await packet(s, g.owner, g.id, { total: 10, count: 2 })).status, 201);
    await s.stop({ keepData: true });
    const v = verify(s.dir);
    assert.equal(v.status, 0, v.stdout + v.stderr);
  } finally {
    await s.stop();
  }
});
