// API tests of the WebSocket at /v1/ws: hello/ready, ping, errors and their close codes, and sockets closed by log-out.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { login, openWs, register, startServer, wsHello } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

describe('/v1/ws', () => {
  test('hello with a valid token is answered with ready; ping gets pong', async () => {
    const { token, user } = await register(srv);
    const c = await wsHello(srv, token);
    assert.equal(c.first.type, 'ready');
    assert.equal(c.first.user_id, user.id);
    c.send({ type: 'ping' });
    assert.deepEqual(await c.next(), { type: 'pong' });
    c.ws.close(1000);
    assert.equal((await c.closed).code, 1000);
  });

  test('after ready, unknown frame types get an error and the socket stays open', async () => {
    const { token } = await register(srv);
    const c = await wsHello(srv, token);
    assert.equal(c.first.type, 'ready');
    c.send({ type: 'launch_rockets' });
    const err = await c.next();
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'unknown_type');
    c.send('this is not json');
    assert.equal((await c.next()).code, 'malformed_json');
    c.send({ no_type: true });
    assert.equal((await c.next()).code, 'invalid_request');
    c.send({ type: 'ping' });
    assert.deepEqual(await c.next(), { type: 'pong' });
    c.ws.close(1000);
    await c.closed;
  });

  test('a bad token is an unauthorized error, then close 4001', async () => {
    for (const token of ['nope', 'A'.repeat(43), undefined, 17]) {
      const c = openWs(srv);
      await c.opened;
      c.send(token === undefined ? { type: 'hello' } : { type: 'hello', token });
      const err = await c.next();
      assert.equal(err.type, 'error');
      assert.equal(err.code, 'unauthorized');
      assert.equal((await c.closed).code, 4001);
    }
  });

  test('any frame before hello is a protocol error, then close 4002', async () => {
    for (const first of [{ type: 'ping' }, 'not json', { token: 'x' }, '[1,2]']) {
      const c = openWs(srv);
      await c.opened;
      c.send(first);
      const err = await c.next();
      assert.equal(err.type, 'error');
      assert.ok(['protocol', 'malformed_json'].includes(err.code), err.code);
      assert.equal((await c.closed).code, 4002);
    }
    const { token } = await register(srv);
    const c = openWs(srv);
    await c.opened;
    c.send({ type: 'hello', token, since: -1 });
    assert.equal((await c.next()).code, 'invalid_request');
    assert.equal((await c.closed).code, 4002);
  });

  test('log-out closes that session\'s sockets with 4001, not the others', async () => {
    const { token, username } = await register(srv);
    const other = (await login(srv, username)).json.token;
    const mine = await wsHello(srv, token);
    const mine2 = await wsHello(srv, token);
    const theirs = await wsHello(srv, other);
    assert.equal(mine.first.type, 'ready');
    assert.equal(theirs.first.type, 'ready');
    assert.equal((await srv.call('DELETE', '/v1/sessions/current', { token })).status, 204);
    assert.equal((await mine.closed).code, 4001);
    assert.equal((await mine2.closed).code, 4001);
    theirs.send({ type: 'ping' });
    assert.deepEqual(await theirs.next(), { type: 'pong' });
    // A new socket with the dead token is refused.
    const again = await wsHello(srv, token);
    assert.equal(again.first.code, 'unauthorized');
    assert.equal((await again.closed).code, 4001);
    theirs.ws.close(1000);
    await theirs.closed;
  });

  test('revoking a device from another closes its socket with 4001', async () => {
    const { token: phone, username } = await register(srv, { userAgent: 'phone' });
    const laptop = (await login(srv, username, undefined, { 'user-agent': 'laptop' })).json.token;
    const sock = await wsHello(srv, phone);
    assert.equal(sock.first.type, 'ready');
    const list = (await srv.call('GET', '/v1/sessions', { token: laptop })).json.sessions;
    const phoneId = list.find((s) => s.device === 'phone').id;
    assert.equal((await srv.call('DELETE', `/v1/sessions/${phoneId}`, { token: laptop })).status, 204);
    assert.equal((await sock.closed).code, 4001);
  });

  test('no hello within 10 seconds: close 4008', { timeout: 20000 }, async () => {
    const c = openWs(srv);
    await c.opened;
    const { code } = await c.closed;
    assert.equal(code, 4008);
  });

  test('a plain GET is not an upgrade: 400', async () => {
    const res = await srv.call('GET', '/v1/ws');
    assert.equal(res.status, 400);
  });

  test('the token sent in hello never reaches the log', async () => {
    const { token } = await register(srv);
    const c = await wsHello(srv, token);
    c.ws.close(1000);
    await c.closed;
    assert.ok(!srv.logs().includes(token));
  });
});
