// API tests of daily limits by tier (`plazad user tier`), the filtered history, its CSV export and monthly statements.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { PLAZAD, expectError, register, startServer } from './lib.mjs';

let keyCounter = 0;
const newKey = () => `hkey-${process.pid}-${++keyCounter}`;
const PIN = '123456';

const setPin = (s, who) => s.call('PUT', '/v1/wallet/pin', { token: who.token, body: { pin: PIN, password: who.password } });
const topup = (s, who, amount, currency = 'USD') =>
  s.call('POST', '/v1/wallet/topups', { token: who.token, body: { amount, currency, idempotency_key: newKey() } });
const send = (s, from, to, amount, { currency = 'USD', note, key = newKey() } = {}) =>
  s.call('POST', '/v1/wallet/transfers', {
    token: from.token,
    body: { to_user_id: to.user.id, amount, currency, pin: PIN, idempotency_key: key, ...(note === undefined ? {} : { note }) },
  });
const withdraw = (s, who, amount, currency = 'USD', key = newKey()) =>
  s.call('POST', '/v1/wallet/withdrawals', { token: who.token, body: { amount, currency, pin: PIN, idempotency_key: key } });
const balances = async (s, who) => {
  const res = await s.call('GET', '/v1/wallet', { token: who.token });
  assert.equal(res.status, 200, res.text);
  return Object.fromEntries(res.json.balances.map((b) => [b.currency, b.available]));
};
const limitsOf = async (s, who) => {
  const res = await s.call('GET', '/v1/wallet/limits', { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json;
};

async function funded(s, amounts = { USD: 0 }) {
  const who = await register(s);
  assert.equal((await setPin(s, who)).status, 204);
  for (const [currency, amount] of Object.entries(amounts)) {
    if (amount) assert.equal((await topup(s, who, amount, currency)).status, 201);
  }
  return who;
}

function plazad(args) {
  return spawnSync(PLAZAD, args, { encoding: 'utf8' });
}

/** Parses RFC 4180 text (CRLF rows, quoted fields with doubled quotes) into rows of fields. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (ch === '"') { quoted = false; i++; continue; }
      field += ch; i++; continue;
    }
    if (ch === '"' && field === '') { quoted = true; i++; continue; }
    if (ch === ',') { row.push(field); field = ''; i++; continue; }
    if (ch === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i += 2; continue; }
    assert.notEqual(ch, '\n', 'a bare LF outside quotes');
    field += ch; i++;
  }
  assert.equal(field, '', 'the last row ends with CRLF');
  assert.equal(row.length, 0);
  return rows;
}

describe('daily limits by tier', () => {
  test('tiers from the CLI choose the limit; a debit over it is 422 and moves nothing', async () => {
    const env = { PLAZA_DAILY_LIMITS: '0:1000,1:5000,3:0' };
    const s = await startServer({ env });
    let s2;
    try {
      const a = await funded(s, { USD: 20000, EUR: 20000 });
      const b = await funded(s);
      const c = await funded(s, { USD: 20000 });
      const lim = await limitsOf(s, a);
      assert.equal(lim.tier, 0);
      assert.deepEqual(lim.limits, [
        { currency: 'USD', daily: 1000, used_today: 0, remaining: 1000 },
        { currency: 'EUR', daily: 1000, used_today: 0, remaining: 1000 },
      ]);
      assert.match(lim.resets_at, /T00:00:00\.000Z$/);
      assert.ok(Date.parse(lim.resets_at) > Date.now());

      // Transfers and withdrawals share the allowance, per currency.
      assert.equal((await send(s, a, b, 600)).status, 201);
      assert.equal((await withdraw(s, a, 300)).status, 201);
      const over = await send(s, a, b, 101, { note: 'too much' });
      expectError(assert, over, 422, 'daily_limit_exceeded');
      assert.match(over.json.error.message, /1\.00 USD left today/);
      expectError(assert, await withdraw(s, a, 101), 422, 'daily_limit_exceeded');
      assert.deepEqual(await balances(s, a), { USD: 20000 - 900, EUR: 20000 });
      assert.equal((await send(s, a, b, 100)).status, 201); // exactly what is left
      expectError(assert, await send(s, a, b, 1), 422, 'daily_limit_exceeded');
      assert.equal((await send(s, a, b, 1000, { currency: 'EUR' })).status, 201); // another currency, its own allowance
      assert.deepEqual((await limitsOf(s, a)).limits, [
        { currency: 'USD', daily: 1000, used_today: 1000, remaining: 0 },
        { currency: 'EUR', daily: 1000, used_today: 1000, remaining: 0 },
      ]);
      // The refusal is the key's answer: the same request later still moves nothing.
      const key = newKey();
      const refused = await send(s, c, b, 1500, { key });
      expectError(assert, refused, 422, 'daily_limit_exceeded');
      assert.deepEqual(await balances(s, c), { USD: 20000, EUR: 0 });
      await s.stop({ keepData: true });

      // The operator raises a and c; b stays at tier 0. Unknown users and bad tiers are refused.
      let r = plazad(['user', 'tier', '--data-dir', s.dir, '--username', a.username, '--tier', '1']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /tier 1/);
      r = plazad(['user', 'tier', '--data-dir', s.dir, '--username', c.username.toUpperCase(), '--tier', '3']);
      assert.equal(r.status, 0, r.stderr);
      r = plazad(['user', 'tier', '--data-dir', s.dir, '--username', 'nobody_here', '--tier', '1']);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /no user named nobody_here/);
      for (const bad of ['10', '-1', 'x', '']) {
        r = plazad(['user', 'tier', '--data-dir', s.dir, '--username', a.username, '--tier', bad]);
        assert.equal(r.status, 2, `tier ${bad}`);
      }
      assert.equal(plazad(['user', 'tier', '--data-dir', s.dir, '--tier', '1']).status, 2);

      s2 = await startServer({ dataDir: s.dir, env });
      const la = await limitsOf(s2, a);
      assert.equal(la.tier, 1);
      // What was sent today still counts under the new tier.
      assert.deepEqual(la.limits[0], { currency: 'USD', daily: 5000, used_today: 1000, remaining: 4000 });
      expectError(assert, await send(s2, a, b, 4001), 422, 'daily_limit_exceeded');
      assert.equal((await send(s2, a, b, 4000)).status, 201);
      // Tier 3 has no limit; a tier left out (2) is as strict as the one below it.
      const lc = await limitsOf(s2, c);
      assert.equal(lc.tier, 3);
      assert.deepEqual(lc.limits[0], { currency: 'USD', daily: null, used_today: 0, remaining: null });
      const late = await send(s2, c, b, 1500, { key });
      assert.equal(late.text, refused.text); // the stored refusal, not a new attempt
      assert.equal((await send(s2, c, b, 15000)).status, 201);
      assert.deepEqual(await balances(s2, c), { USD: 5000, EUR: 0 });

      await s2.stop({ keepData: true });
      s2 = null;
      const v = plazad(['ledger', 'verify', '--data-dir', s.dir]);
      assert.equal(v.status, 0, v.stdout + v.stderr);
    } finally {
      await s2?.stop();
      await s.stop();
    }
  });

  test('bad --daily-limits stop plazad at start with a clear message', () => {
    for (const bad of ['1:500', '0:-5', '0:1.5', '0:100,0:200', '12:5', '0:abc', '0:10;1:20']) {
      const r = spawnSync(PLAZAD, ['--daily-limits', bad, '--data-dir', '/nonexistent-plaza'], { encoding: 'utf8' });
      assert.equal(r.status, 2, bad);
      assert.match(r.stderr, /--daily-limits/, bad);
    }
  });
});

describe('history, CSV and statements', () => {
  let srv;
  let a;
  let b;
  before(async () => {
    srv = await startServer();
    a = await funded(srv, { USD: 10000, EUR: 700 });
    b = await funded(srv);
    // b's display name and the note both try to smuggle formulas and CSV structure in.
    assert.equal((await srv.call('PATCH', '/v1/me', { token: b.token, body: { display_name: '=HYPERLINK("x"),evil' } })).status, 200);
    assert.equal((await send(srv, a, b, 1234, { note: 'rent, "june" =cmd|\' /C calc\'!A0' })).status, 201);
    assert.equal((await send(srv, a, b, 99, { note: '@SUM(1+1)' })).status, 201);
    assert.equal((await withdraw(srv, a, 500)).status, 201);
    assert.equal((await send(srv, a, b, 5, { currency: 'EUR', note: '+plus' })).status, 201);
  });
  after(async () => { await srv?.stop(); });

  const get = (p, who = a) => srv.call('GET', p, { token: who.token });

  test('each transaction shows its signed amount, type, counterparty and note', async () => {
    const res = await get('/v1/wallet/transactions');
    assert.equal(res.status, 200, res.text);
    const t = res.json.transactions;
    assert.deepEqual(t.map((x) => [x.type, x.amount, x.currency]), [
      ['transfer', -5, 'EUR'], ['withdrawal', -500, 'USD'], ['transfer', -99, 'USD'], ['transfer', -1234, 'USD'],
      ['topup', 700, 'EUR'], ['topup', 10000, 'USD'],
    ]);
    assert.deepEqual(t[3].counterparty, { type: 'user', id: b.user.id, username: b.username, display_name: '=HYPERLINK("x"),evil' });
    assert.equal(t[3].counterparty_id, b.user.id);
    assert.equal(t[3].note, 'rent, "june" =cmd|\' /C calc\'!A0');
    assert.equal(t[1].counterparty, null);
    assert.equal(t[1].note, '');
    assert.match(t[0].created_at, /^\d{4}-\d\d-\d\dT/);
    // The receiver sees the same transfer from the other side, once accepted.
    const mine = (await get('/v1/wallet/transactions', b)).json.transactions;
    assert.equal(mine.length, 0); // pending: nothing reached b yet
  });

  test('filters: currency, type, dates, paging; bad filters are 400', async () => {
    const usd = (await get('/v1/wallet/transactions?currency=USD')).json.transactions;
    assert.deepEqual(usd.map((x) => x.amount), [-500, -99, -1234, 10000]);
    const sent = (await get('/v1/wallet/transactions?type=transfer')).json.transactions;
    assert.deepEqual(sent.map((x) => x.amount), [-5, -99, -1234]);
    const two = (await get('/v1/wallet/transactions?type=topup,withdrawal&currency=USD')).json.transactions;
    assert.deepEqual(two.map((x) => x.amount), [-500, 10000]);
    const today = new Date().toISOString().slice(0, 10);
    assert.equal((await get(`/v1/wallet/transactions?from=${today}&to=${today}`)).json.transactions.length, 6);
    assert.equal((await get('/v1/wallet/transactions?to=2025-01-01')).json.transactions.length, 0);
    assert.equal((await get('/v1/wallet/transactions?from=2999-01-01')).json.transactions.length, 0);
    const p1 = (await get('/v1/wallet/transactions?currency=USD&limit=3')).json;
    assert.deepEqual(p1.transactions.map((x) => x.amount), [-500, -99, -1234]);
    const p2 = (await get(`/v1/wallet/transactions?currency=USD&limit=3&before=${p1.next_before}`)).json;
    assert.deepEqual(p2.transactions.map((x) => x.amount), [10000]);
    assert.equal(p2.next_before, null);

    expectError(assert, await get('/v1/wallet/transactions?currency=GBP'), 400, 'unknown_currency');
    expectError(assert, await get('/v1/wallet/transactions?currency=usd'), 400, 'unknown_currency');
    for (const q of ['type=bogus', 'type=', 'type=topup,,transfer', 'from=2025-13-01', 'from=2025-02-30', 'to=yesterday',
      'from=2025-06-02&to=2025-06-01', 'before=abc', 'limit=0', 'limit=-1', 'limit=1.5']) {
      expectError(assert, await get(`/v1/wallet/transactions?${q}`), 400, 'invalid_request');
      // The export takes every match: it has no limit to get wrong.
      if (!q.startsWith('limit')) expectError(assert, await get(`/v1/wallet/transactions.csv?${q}`), 400, 'invalid_request');
    }
    const bad = await get('/v1/wallet/transactions?type=bogus');
    assert.match(bad.json.error.message, /topup/);
    expectError(assert, await srv.call('GET', '/v1/wallet/transactions.csv'), 401, 'unauthorized');
  });

  test('the CSV export is RFC 4180 with formulas neutralized, amounts in decimal', async () => {
    const res = await get('/v1/wallet/transactions.csv');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('content-type'), 'text/csv; charset=utf-8');
    assert.match(res.headers.get('content-disposition'), /^attachment; filename="plaza-transactions-\d{4}-\d\d-\d\d\.csv"$/);
    const rows = parseCsv(res.text);
    assert.deepEqual(rows[0], ['date', 'type', 'amount', 'currency', 'counterparty', 'counterparty_name', 'note',
      'transaction_id', 'reference_id']);
    assert.equal(rows.length, 7);
    for (const r of rows) assert.equal(r.length, 9);
    const body = rows.slice(1);
    assert.deepEqual(body.map((r) => [r[1], r[2], r[3]]), [
      ['transfer', '-0.05', 'EUR'], ['withdrawal', '-5.00', 'USD'], ['transfer', '-0.99', 'USD'], ['transfer', '-12.34', 'USD'],
      ['topup', '7.00', 'EUR'], ['topup', '100.00', 'USD'],
    ]);
    // The hostile cells come back as text that starts with a quote mark.
    assert.equal(body[3][4], b.username);
    assert.equal(body[3][5], '\'=HYPERLINK("x"),evil');
    assert.equal(body[3][6], 'rent, "june" =cmd|\' /C calc\'!A0');
    assert.equal(body[2][6], '\'@SUM(1+1)');
    assert.equal(body[0][6], '\'+plus');
    // Raw: the quoted field doubles its quotes.
    assert.ok(res.text.includes('"rent, ""june"" =cmd|\' /C calc\'!A0"'), res.text);
    assert.ok(res.text.includes('"\'=HYPERLINK(""x""),evil"'), res.text);
    // No cell of the file starts with a formula character.
    for (const r of body) for (const cell of r.slice(4)) assert.doesNotMatch(cell, /^[=+\-@]/);
    // The same filters as the JSON history.
    const eur = parseCsv((await get('/v1/wallet/transactions.csv?currency=EUR&type=topup')).text);
    assert.deepEqual(eur.slice(1).map((r) => r[2]), ['7.00']);
  });

  test('a monthly statement adds up to the balances, and a CSV of it too', async () => {
    const month = new Date().toISOString().slice(0, 7);
    const res = await get(`/v1/wallet/statements/${month}`);
    assert.equal(res.status, 200, res.text);
    const st = res.json.statement;
    assert.equal(st.month, month);
    assert.deepEqual(st.currency, [
      { currency: 'USD', opening_balance: 0, credits: 10000, debits: 1833, closing_balance: 8167, count: 4 },
      { currency: 'EUR', opening_balance: 0, credits: 700, debits: 5, closing_balance: 695, count: 2 },
    ]);
    assert.deepEqual(await balances(srv, a), { USD: 8167, EUR: 695 });
    // b accepts one transfer: b's statement and balance agree.
    const t = (await send(srv, a, b, 1, { note: 'x' })).json.transfer;
    assert.equal((await srv.call('POST', `/v1/wallet/transfers/${t.id}/accept`, { token: b.token })).status, 200);
    const sb = (await get(`/v1/wallet/statements/${month}`, b)).json.statement.currency;
    assert.deepEqual(sb[0], { currency: 'USD', opening_balance: 0, credits: 1, debits: 0, closing_balance: 1, count: 1 });
    assert.deepEqual(await balances(srv, b), { USD: 1, EUR: 0 });
    const inB = (await get('/v1/wallet/transactions', b)).json.transactions;
    assert.deepEqual(inB.map((x) => [x.type, x.amount, x.counterparty.id, x.note]), [['transfer_accept', 1, a.user.id, 'x']]);

    // An earlier month opens and closes at 0; the next one has not begun.
    const past = (await get('/v1/wallet/statements/2025-01')).json.statement.currency;
    assert.deepEqual(past[0], { currency: 'USD', opening_balance: 0, credits: 0, debits: 0, closing_balance: 0, count: 0 });
    const d = new Date();
    const next = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).toISOString().slice(0, 7);
    expectError(assert, await get(`/v1/wallet/statements/${next}`), 400, 'invalid_request');
    for (const bad of ['2025-13', '2025-6', '25-06', '2025-06-01', 'x', '1969-12', '2025-06.txt']) {
      expectError(assert, await get(`/v1/wallet/statements/${bad}`), 400, 'invalid_request');
    }

    const csv = await get(`/v1/wallet/statements/${month}.csv`);
    assert.equal(csv.status, 200);
    assert.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8');
    assert.equal(csv.headers.get('content-disposition'), `attachment; filename="plaza-statement-${month}.csv"`);
    assert.deepEqual(parseCsv(csv.text), [
      ['month', 'currency', 'opening_balance', 'credits', 'debits', 'closing_balance', 'count'],
      [month, 'USD', '0.00', '100.00', '18.34', '81.66', '5'],
      [month, 'EUR', '0.00', '7.00', '0.05', '6.95', '2'],
    ]);
  });
});

describe('currencies without cents', () => {
  test('JPY amounts have no decimals in the CSV', async () => {
    const s = await startServer({ env: { PLAZA_CURRENCIES: 'JPY,KWD' } });
    try {
      const u = await funded(s, { JPY: 1500, KWD: 12345 });
      const rows = parseCsv((await s.call('GET', '/v1/wallet/transactions.csv', { token: u.token })).text);
      assert.deepEqual(rows.slice(1).map((r) => [r[2], r[3]]), [['12.345', 'KWD'], ['1500', 'JPY']]);
      const lim = await limitsOf(s, u);
      assert.deepEqual(lim.limits.map((l) => l.daily), [50000, 50000]); // the default tier 0 limit
    } finally {
      await s.stop();
    }
  });
});
