// API tests of log-in, log-out, the device list and revocation, bearer authentication and log-in rate limits.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, expectError, login, register, startServer, uniqueName } from './lib.mjs';

describe('sessions', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => { await srv?.stop(); });

  test('POST /v1/sessions logs in with a new token', async () => {
    const { user, token, username } = await register(srv);
    const res = await login(srv, username);
    assert.equal(res.status, 201);
    assert.deepEqual(res.json.user, user);
    assert.match(res.json.token, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(res.json.token, token);
    const me = await srv.call('GET', '/v1/me', { token: res.json.token });
    assert.equal(me.status, 200);
    assert.equal(me.json.user.id, user.id);
  });

  test('a wrong password and an unknown user get the same 401', async () => {
    const { username } = await register(srv);
    const wrong = await login(srv, username, 'not the password');
    const unknown = await login(srv, uniqueName('ghost'), 'not the password');
    expectError(assert, wrong, 401, 'invalid_credentials');
    expectError(assert, unknown, 401, 'invalid_credentials');
    assert.deepEqual(wrong.json, unknown.json);
  });

  test('log-in input errors: missing fields and malformed JSON', async () => {
    expectError(assert, await srv.call('POST', '/v1/sessions', { body: { username: 'abc' } }), 400, 'invalid_request');
    expectError(assert, await srv.call('POST', '/v1/sessions', { body: { password: PASSWORD } }), 400, 'invalid_request');
    expectError(assert, await srv.call('POST', '/v1/sessions', { body: { username: 1, password: PASSWORD } }), 400,
      'invalid_request');
    expectError(assert, await srv.call('POST', '/v1/sessions', { raw: '{"username":' }), 400, 'malformed_json');
  });

  test('authenticated calls need a valid bearer token', async () => {
    const { token } = await register(srv);
    const noToken = await srv.call('GET', '/v1/me');
    expectError(assert, noToken, 401, 'unauthorized');
    assert.equal(noToken.headers.get('www-authenticate'), 'Bearer');
    for (const authorization of ['Bearer', 'Bearer nonsense', `Basic ${token}`, `Bearer ${token}x`,
      `Bearer ${'A'.repeat(43)}`, `Bearer ${token.slice(0, -1)}`]) {
      const res = await srv.call('GET', '/v1/me', { headers: { authorization } });
      expectError(assert, res, 401, 'unauthorized');
    }
    assert.equal((await srv.call('GET', '/v1/me', { headers: { authorization: `bearer ${token}` } })).status, 200);
  });

  test('DELETE /v1/sessions/current logs out: the token stops working at once', async () => {
    const { token, username } = await register(srv);
    const other = (await login(srv, username)).json.token;
    assert.equal((await srv.call('GET', '/v1/me', { token })).status, 200); // now resolved from memory
    const res = await srv.call('DELETE', '/v1/sessions/current', { token });
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    expectError(assert, await srv.call('GET', '/v1/me', { token }), 401, 'unauthorized');
    expectError(assert, await srv.call('DELETE', '/v1/sessions/current', { token }), 401, 'unauthorized');
    // The other device is still signed in.
    assert.equal((await srv.call('GET', '/v1/me', { token: other })).status, 200);
  });

  test('GET /v1/sessions lists my devices, DELETE /v1/sessions/{id} revokes one', async () => {
    const phone = 'PlazaTest/1.0 (phone)';
    const laptop = 'PlazaTest/2.0 (laptop)';
    const { token: phoneToken, username } = await register(srv, { userAgent: phone });
    const laptopToken = (await login(srv, username, PASSWORD, { 'user-agent': laptop })).json.token;

    const list = await srv.call('GET', '/v1/sessions', { token: laptopToken });
    assert.equal(list.status, 200);
    assert.equal(list.json.sessions.length, 2);
    const byDevice = Object.fromEntries(list.json.sessions.map((s) => [s.device, s]));
    assert.equal(byDevice[laptop].current, true);
    assert.equal(byDevice[phone].current, false);
    for (const s of list.json.sessions) {
      assert.match(s.id, /^[0-9]+$/);
      assert.equal(s.ip, '127.0.0.1');
      for (const f of ['created_at', 'last_seen_at', 'expires_at']) assert.ok(!Number.isNaN(Date.parse(s[f])), f);
      assert.ok(Date.parse(s.expires_at) - Date.parse(s.created_at) >= 89 * 24 * 3600 * 1000);
      assert.equal(s.token, undefined);
    }

    // Someone else cannot see or revoke my device.
    const stranger = await register(srv);
    const theirs = await srv.call('GET', '/v1/sessions', { token: stranger.token });
    assert.equal(theirs.json.sessions.length, 1);
    expectError(assert, await srv.call('DELETE', `/v1/sessions/${byDevice[phone].id}`, { token: stranger.token }),
      404, 'not_found');
    assert.equal((await srv.call('GET', '/v1/me', { token: phoneToken })).status, 200);

    // I can: the phone's token is dead at once, the laptop's lives on.
    const del = await srv.call('DELETE', `/v1/sessions/${byDevice[phone].id}`, { token: laptopToken });
    assert.equal(del.status, 204);
    expectError(assert, await srv.call('GET', '/v1/me', { token: phoneToken }), 401, 'unauthorized');
    const after = await srv.call('GET', '/v1/sessions', { token: laptopToken });
    assert.deepEqual(after.json.sessions.map((s) => s.device), [laptop]);
    expectError(assert, await srv.call('DELETE', `/v1/sessions/${byDevice[phone].id}`, { token: laptopToken }), 404,
      'not_found');
    expectError(assert, await srv.call('DELETE', '/v1/sessions/abc', { token: laptopToken }), 400, 'invalid_request');
    expectError(assert, await srv.call('DELETE', '/v1/sessions/-5', { token: laptopToken }), 400, 'invalid_request');
  });

  test('a long User-Agent is cut, control characters replaced', async () => {
    const { token } = await register(srv, { userAgent: `Agent/${'x'.repeat(300)}` });
    const list = await srv.call('GET', '/v1/sessions', { token });
    assert.equal(list.json.sessions[0].device.length, 128);
  });
});

describe('log-in rate limit per account', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => { await srv?.stop(); });

  test('after 5 failures the account answers 429 with Retry-After, even to the right password', async () => {
    const { username } = await register(srv);
    const bystander = await register(srv);
    for (let i = 0; i < 5; i++) expectError(assert, await login(srv, username, `wrong-${i}-password`), 401, 'invalid_credentials');
    const limited = await login(srv, username, 'wrong-again-password');
    expectError(assert, limited, 429, 'too_many_attempts');
    const retry = Number(limited.headers.get('retry-after'));
    assert.ok(Number.isInteger(retry) && retry > 0 && retry <= 900, `Retry-After ${retry}`);
    expectError(assert, await login(srv, username), 429, 'too_many_attempts');
    expectError(assert, await login(srv, username.toUpperCase()), 429, 'too_many_attempts');
    // Another account from the same address is not locked out.
    assert.equal((await login(srv, bystander.username)).status, 201);
  });

  test('a success clears the account\'s failures', async () => {
    const { username } = await register(srv);
    for (let i = 0; i < 4; i++) assert.equal((await login(srv, username, 'bad password!')).status, 401);
    assert.equal((await login(srv, username)).status, 201);
    for (let i = 0; i < 4; i++) assert.equal((await login(srv, username, 'bad password!')).status, 401);
    assert.equal((await login(srv, username)).status, 201);
  });
});

describe('log-in rate limit under concurrent guesses', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => { await srv?.stop(); });

  test('ten guesses sent at once: five are judged, five are refused', async () => {
    const { username } = await register(srv);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => login(srv, username, `guess-${i}-wrong`)));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429, 429, 429]);
  });
});

describe('log-in rate limit per address', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => { await srv?.stop(); });

  test('after 20 failures from one address, every account is refused from it', async () => {
    const { username } = await register(srv);
    for (let i = 0; i < 20; i++) {
      expectError(assert, await login(srv, uniqueName('spray'), 'guessing-password'), 401, 'invalid_credentials');
    }
    const res = await login(srv, username);
    expectError(assert, res, 429, 'too_many_attempts');
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    // Failures that never touch an account (a malformed username) count too.
    expectError(assert, await login(srv, 'x', 'whatever-password'), 429, 'too_many_attempts');
  });
});
