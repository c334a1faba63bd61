// API tests of the operator's endpoints: GET /v1/admin/ledger/verify behind the admin token, absent without one.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PASSWORD, PLAZAD, expectError, register, startServer } from './lib.mjs';

const TOKEN = 'op-' + 'x7Qe9'.repeat(8); // 43 printable characters
let tmp;
let srv;
before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'plaza-admin-'));
  writeFileSync(path.join(tmp, 'admin.token'), TOKEN + '\n', { mode: 0o600 });
  srv = await startServer({ env: { PLAZA_ADMIN_TOKEN_FILE: path.join(tmp, 'admin.token') } });
});
after(async () => {
  await srv?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const verifyAsAdmin = (token = TOKEN) => srv.call('GET', '/v1/admin/ledger/verify', { token });

test('without the admin token the endpoint refuses: no token, a user session, a wrong token', async () => {
  expectError(assert, await srv.call('GET', '/v1/admin/ledger/verify'), 401, 'unauthorized');
  const u = await register(srv);
  expectError(assert, await verifyAsAdmin(u.token), 401, 'unauthorized');
  expectError(assert, await verifyAsAdmin(TOKEN.slice(0, -1) + 'Z'), 401, 'unauthorized');
});

test('the ledger verifies while the server runs, and a damaged balance is named', async () => {
  const a = await register(srv);
  assert.equal((await srv.call('PUT', '/v1/wallet/pin', { token: a.token, body: { pin: '246810', password: PASSWORD } })).status, 204);
  const top = await srv.call('POST', '/v1/wallet/topups', {
    token: a.token, body: { amount: 5000, currency: 'USD', idempotency_key: 'admin-top-1' },
  });
  assert.equal(top.status, 201, top.text);

  const ok = await verifyAsAdmin();
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.ok, true, ok.text);
  assert.equal(ok.json.violation_count, 0);
  assert.deepEqual(ok.json.violations, []);
  assert.ok(ok.json.transactions >= 1);

  // Another process damages a cached balance behind the server's back.
  execFileSync('sqlite3', [path.join(srv.dir, 'plaza.db'),
    "UPDATE wallet_accounts SET balance = balance + 7 WHERE id = (SELECT id FROM wallet_accounts WHERE kind = 'user' LIMIT 1)"]);
  const bad = await verifyAsAdmin();
  assert.equal(bad.status, 200, bad.text);
  assert.equal(bad.json.ok, false);
  assert.ok(bad.json.violation_count >= 1);
  assert.ok(bad.json.violations.some((v) => /cached balance/.test(v)), bad.text);
  // Put it back, so that the server stops with a sound ledger.
  execFileSync('sqlite3', [path.join(srv.dir, 'plaza.db'),
    "UPDATE wallet_accounts SET balance = balance - 7 WHERE id = (SELECT id FROM wallet_accounts WHERE kind = 'user' LIMIT 1)"]);
  assert.equal((await verifyAsAdmin()).json.ok, true);
});

test('a server started without an admin token has no admin route', async () => {
  const s = await startServer();
  try {
    expectError(assert, await s.call('GET', '/v1/admin/ledger/verify', { token: TOKEN }), 404, 'not_found');
  } finally {
    await s.stop();
  }
});

test('a token file that is too short stops plazad at start with a clear error', () => {
  const file = path.join(tmp, 'short.token');
  writeFileSync(file, 'short\n');
  const r = spawnSync(PLAZAD, ['--listen', '127.0.0.1:1', '--data-dir', path.join(tmp, 'data'), '--admin-token-file', file],
    { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /admin token in .* must be 32 to 256 printable characters/);
});
