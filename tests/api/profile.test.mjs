// API tests of my profile (GET/PATCH /v1/me), user search (GET /v1/users?q=) and user lookup (GET /v1/users/{id}).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expectError, register, startServer, uniqueName } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

describe('/v1/me', () => {
  test('PATCH changes display_name and bio, each on its own, and GET shows it', async () => {
    const { token, user } = await register(srv, { displayName: 'Before' });
    let res = await srv.call('PATCH', '/v1/me', { token, body: { bio: 'Tea, trains and 王菲 🎶' } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json.user, { ...user, bio: 'Tea, trains and 王菲 🎶' });
    res = await srv.call('PATCH', '/v1/me', { token, body: { display_name: 'After' } });
    assert.equal(res.status, 200);
    assert.equal(res.json.user.display_name, 'After');
    assert.equal(res.json.user.bio, 'Tea, trains and 王菲 🎶', 'bio kept');
    const me = await srv.call('GET', '/v1/me', { token });
    assert.deepEqual(me.json.user, res.json.user);
    res = await srv.call('PATCH', '/v1/me', { token, body: { bio: '' } });
    assert.equal(res.json.user.bio, '');
  });

  test('PATCH refuses bad values and changes nothing', async () => {
    const { token, user } = await register(srv, { displayName: 'Steady' });
    const cases = [
      [{ display_name: '' }, 'invalid_request', /display_name/],
      [{ display_name: 'x'.repeat(65) }, 'invalid_request', /display_name/],
      [{ display_name: 'two\nlines' }, 'invalid_request', /display_name/],
      [{ display_name: 7 }, 'invalid_request', /display_name/],
      [{ bio: 'b'.repeat(281) }, 'invalid_request', /bio/],
      [{ bio: 'nul\u0000byte' }, 'malformed_json', /JSON/],
      [{ bio: 'esc\u001b[31m' }, 'invalid_request', /bio/],
      [{ bio: null }, 'invalid_request', /bio/],
      [{ display_name: 'Fine', bio: 'b'.repeat(281) }, 'invalid_request', /bio/],
      [{}, 'invalid_request', /display_name or bio/],
    ];
    for (const [body, code, msg] of cases) {
      const res = await srv.call('PATCH', '/v1/me', { token, body });
      expectError(assert, res, 400, code);
      assert.match(res.json.error.message, msg);
    }
    assert.equal((await srv.call('PATCH', '/v1/me', { token, body: { bio: 'b'.repeat(280) } })).status, 200);
    const me = await srv.call('GET', '/v1/me', { token });
    assert.equal(me.json.user.display_name, user.display_name);
    assert.equal(me.json.user.bio, 'b'.repeat(280));
    const bytes = Buffer.concat([Buffer.from('{"bio":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    expectError(assert, await srv.call('PATCH', '/v1/me', { token, raw: bytes }), 400, 'invalid_utf8');
  });

  test('needs a token', async () => {
    expectError(assert, await srv.call('PATCH', '/v1/me', { body: { bio: 'x' } }), 401, 'unauthorized');
  });
});

describe('/v1/users', () => {
  test('search is a case-insensitive username prefix; _ is not a wildcard', async () => {
    const tag = uniqueName('s').replace(/_/g, '').slice(0, 10);
    const { token } = await register(srv, { username: `${tag}_ann` });
    await register(srv, { username: `${tag}_bob` });
    await register(srv, { username: `${tag}xann` }); // would match "tag_" if _ were a wildcard
    await register(srv, { username: `${tag}0` });
    let res = await srv.call('GET', `/v1/users?q=${tag}_`, { token });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json.users.map((u) => u.username), [`${tag}_ann`, `${tag}_bob`]);
    res = await srv.call('GET', `/v1/users?q=${tag.toUpperCase()}_A`, { token });
    assert.deepEqual(res.json.users.map((u) => u.username), [`${tag}_ann`]);
    res = await srv.call('GET', `/v1/users?q=${tag}`, { token });
    assert.deepEqual(res.json.users.map((u) => u.username), [`${tag}0`, `${tag}_ann`, `${tag}_bob`, `${tag}xann`]);
    const u = res.json.users[0];
    assert.deepEqual(Object.keys(u).sort(), ['bio', 'display_name', 'id', 'username']);
  });

  test('search answers at most 20, in username order', async () => {
    const tag = uniqueName('m').replace(/_/g, '').slice(0, 8);
    const { token } = await register(srv, { username: `${tag}_me` });
    for (let i = 0; i < 24; i++) await register(srv, { username: `${tag}${String(i).padStart(2, '0')}` });
    const res = await srv.call('GET', `/v1/users?q=${tag}`, { token });
    assert.equal(res.json.users.length, 20);
    const names = res.json.users.map((x) => x.username);
    assert.deepEqual(names, [...names].sort());
    assert.equal(names[0], `${tag}00`);
  });

  test('search input: q required, characters no username has give no result', async () => {
    const { token } = await register(srv);
    expectError(assert, await srv.call('GET', '/v1/users', { token }), 400, 'invalid_request');
    expectError(assert, await srv.call('GET', '/v1/users?q=', { token }), 400, 'invalid_request');
    for (const q of ['%25', 'a%20b', 'a-b', 'x'.repeat(33), '%E7%8E%8B']) {
      const res = await srv.call('GET', `/v1/users?q=${q}`, { token });
      assert.equal(res.status, 200, q);
      assert.deepEqual(res.json.users, []);
    }
    expectError(assert, await srv.call('GET', '/v1/users?q=%FF', { token }), 400, 'invalid_utf8');
    expectError(assert, await srv.call('GET', '/v1/users?q=abc'), 401, 'unauthorized');
  });

  test('GET /v1/users/{id} shows a user; unknown 404, malformed id 400', async () => {
    const { token } = await register(srv);
    const other = await register(srv, { displayName: 'Other One' });
    const res = await srv.call('GET', `/v1/users/${other.user.id}`, { token });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json.user, other.user);
    expectError(assert, await srv.call('GET', '/v1/users/1', { token }), 404, 'not_found');
    for (const bad of ['abc', '0', '-1', '1.5', '99999999999999999999']) {
      expectError(assert, await srv.call('GET', `/v1/users/${bad}`, { token }), 400, 'invalid_request');
    }
    expectError(assert, await srv.call('GET', `/v1/users/${other.user.id}`), 401, 'unauthorized');
  });
});
