// API tests of sign-up (POST /v1/accounts), bad input of every kind, /healthz and /metrics.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, expectError, login, register, startServer, uniqueName } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

describe('POST /v1/accounts', () => {
  test('creates the account and answers with the user and a working token', async () => {
    const username = uniqueName('new');
    const res = await srv.call('POST', '/v1/accounts', {
      body: { username, password: PASSWORD, display_name: 'Zoë 王' },
    });
    assert.equal(res.status, 201);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const { user, token } = res.json;
    assert.match(user.id, /^[1-9][0-9]{0,18}$/, 'ids are decimal strings');
    assert.equal(user.username, username);
    assert.equal(user.display_name, 'Zoë 王');
    assert.equal(user.bio, '');
    assert.match(token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes in base64url');

    const me = await srv.call('GET', '/v1/me', { token });
    assert.equal(me.status, 200);
    assert.deepEqual(me.json.user, user);
  });

  test('stores the username in lower case and refuses it in any case afterwards', async () => {
    const name = uniqueName('case');
    const mixed = name.toUpperCase();
    const res = await srv.call('POST', '/v1/accounts', {
      body: { username: mixed, password: PASSWORD, display_name: 'Case' },
    });
    assert.equal(res.status, 201);
    assert.equal(res.json.user.username, name);
    for (const again of [name, mixed, name[0].toUpperCase() + name.slice(1)]) {
      const dup = await srv.call('POST', '/v1/accounts', {
        body: { username: again, password: PASSWORD, display_name: 'Other' },
      });
      expectError(assert, dup, 409, 'username_taken');
    }
    // The name logs in in any case too.
    assert.equal((await login(srv, mixed)).status, 201);
  });

  test('refuses usernames outside 3 to 32 of [a-z0-9_]', async () => {
    for (const username of ['ab', 'a'.repeat(33), 'has space', 'dash-ed', 'dot.ted', 'émile', 'tab\tx', '']) {
      const res = await srv.call('POST', '/v1/accounts', {
        body: { username, password: PASSWORD, display_name: 'X' },
      });
      expectError(assert, res, 400, 'invalid_request');
      assert.match(res.json.error.message, /username/);
    }
    assert.equal((await register(srv, { username: 'a'.repeat(31) + '_' })).user.username, 'a'.repeat(31) + '_');
    assert.equal((await register(srv, { username: 'x_9' })).user.username, 'x_9');
  });

  test('passwords count code points, at least 8, at most 256 bytes', async () => {
    const attempt = (password) => srv.call('POST', '/v1/accounts', {
      body: { username: uniqueName('pw'), password, display_name: 'P' },
    });
    let res = await attempt('1234567');
    expectError(assert, res, 400, 'invalid_request');
    assert.match(res.json.error.message, /password/);
    res = await attempt('ééééééé'); // 7 characters, 14 bytes
    expectError(assert, res, 400, 'invalid_request');
    assert.equal((await attempt('éééééééé')).status, 201); // 8 characters
    assert.equal((await attempt('x'.repeat(256))).status, 201);
    res = await attempt('x'.repeat(257));
    expectError(assert, res, 400, 'invalid_request');
    assert.match(res.json.error.message, /256/);
  });

  test('display names are 1 to 64 characters with no control characters', async () => {
    const attempt = (display_name) => srv.call('POST', '/v1/accounts', {
      body: { username: uniqueName('dn'), password: PASSWORD, display_name },
    });
    for (const bad of ['', '   ', 'x'.repeat(65), 'new\nline', 'tab\there', 'bell\u0007', 'c1\u0085']) {
      const res = await attempt(bad);
      expectError(assert, res, 400, 'invalid_request');
      assert.match(res.json.error.message, /display_name/);
    }
    assert.equal((await attempt('王'.repeat(64))).status, 201);
    assert.equal((await attempt('😀'.repeat(64))).status, 201);
  });

  test('missing fields and wrong types are 400 naming the field', async () => {
    const cases = [
      [{ password: PASSWORD, display_name: 'X' }, /username/],
      [{ username: uniqueName(), display_name: 'X' }, /password/],
      [{ username: uniqueName(), password: PASSWORD }, /display_name/],
      [{ username: 42, password: PASSWORD, display_name: 'X' }, /username/],
      [{ username: uniqueName(), password: ['x'], display_name: 'X' }, /password/],
      [{ username: uniqueName(), password: PASSWORD, display_name: null }, /display_name/],
    ];
    for (const [body, field] of cases) {
      const res = await srv.call('POST', '/v1/accounts', { body });
      expectError(assert, res, 400, 'invalid_request');
      assert.match(res.json.error.message, field);
    }
  });

  test('unknown fields are ignored', async () => {
    const username = uniqueName('extra');
    const res = await srv.call('POST', '/v1/accounts', {
      body: { username, password: PASSWORD, display_name: 'X', favourite_colour: 'teal', bio: 'ignored here' },
    });
    assert.equal(res.status, 201);
    assert.equal(res.json.user.bio, '');
  });

  test('malformed JSON, non-objects and invalid UTF-8 are refused with their own codes', async () => {
    for (const raw of ['{"username": "x"', 'not json', '', '{"a":1}{', '{"username":"a","username":"b"}']) {
      expectError(assert, await srv.call('POST', '/v1/accounts', { raw }), 400, 'malformed_json');
    }
    for (const raw of ['[]', '"text"', '42', 'null']) {
      expectError(assert, await srv.call('POST', '/v1/accounts', { raw }), 400, 'invalid_request');
    }
    const username = uniqueName('utf');
    const bytes = Buffer.concat([
      Buffer.from(`{"username":"${username}","password":"${PASSWORD}","display_name":"bad `),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    expectError(assert, await srv.call('POST', '/v1/accounts', { raw: bytes }), 400, 'invalid_utf8');
    // A lone surrogate escape is not text either.
    const surrogate = `{"username":"${username}","password":"${PASSWORD}","display_name":"\\ud800"}`;
    const res = await srv.call('POST', '/v1/accounts', { raw: surrogate });
    assert.equal(res.status, 400);
    // Nothing was created by any of these.
    assert.equal((await login(srv, username)).status, 401);
  });

  test('a failed sign-up changes nothing: the name stays free', async () => {
    const username = uniqueName('free');
    const bad = await srv.call('POST', '/v1/accounts', { body: { username, password: 'short', display_name: 'F' } });
    assert.equal(bad.status, 400);
    assert.equal((await register(srv, { username })).username, username);
  });

  test('concurrent sign-ups of one name: exactly one wins', async () => {
    const username = uniqueName('race');
    const results = await Promise.all(Array.from({ length: 6 }, () => srv.call('POST', '/v1/accounts', {
      body: { username, password: PASSWORD, display_name: 'Race' },
    })));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409]);
    for (const r of results.filter((x) => x.status === 409)) assert.equal(r.json.error.code, 'username_taken');
  });

  test('a body over the limit is 413', async () => {
    const huge = JSON.stringify({ username: uniqueName(), password: PASSWORD, display_name: 'x'.repeat(2 * 1024 * 1024) });
    let status;
    try {
      status = (await srv.call('POST', '/v1/accounts', { raw: huge })).status;
    } catch {
      status = 413; // the server may close before reading the whole body
    }
    assert.equal(status, 413);
  });

  test('the token and password never reach the log', async () => {
    const { token, password } = await register(srv, { password: 'Sup3r-secret-Passw0rd' });
    await srv.call('GET', '/v1/me', { token });
    await login(srv, uniqueName('nobody'), 'Another-Secret-99');
    const log = srv.logs();
    assert.ok(!log.includes(token), 'token in log');
    assert.ok(!log.includes(password), 'password in log');
    assert.ok(!log.includes('Another-Secret-99'), 'password in log');
  });
});

describe('operations endpoints', () => {
  test('GET /healthz answers ok', async () => {
    const res = await srv.call('GET', '/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { status: 'ok' });
  });

  test('GET /metrics is the Prometheus text format', async () => {
    await register(srv);
    const res = await srv.call('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4');
    assert.match(res.text, /^plaza_accounts_created_total [1-9][0-9]*$/m);
  });

  test('unknown /v1 paths are 404 with the envelope, wrong methods 405', async () => {
    expectError(assert, await srv.call('GET', '/v1/nothing-here'), 404, 'not_found');
    const res = await srv.call('PUT', '/v1/accounts', { body: {} });
    assert.equal(res.status, 405);
    assert.match(res.headers.get('allow') || '', /POST/);
  });
});
