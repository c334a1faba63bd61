// Durability: whatever plazad acknowledged survives kill -9 of the process at any moment.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PASSWORD, login, register, startServer, uniqueName } from './lib.mjs';

test('an account acknowledged with 201 logs in after kill -9 and restart', async () => {
  const srv = await startServer();
  let srv2;
  try {
    const { username, user } = await register(srv);
    await srv.kill9(); // at once: no graceful stop, no checkpoint
    assert.equal(srv.child.signalCode, 'SIGKILL');
    srv2 = await startServer({ dataDir: srv.dir });
    const res = await login(srv2, username);
    assert.equal(res.status, 201);
    assert.equal(res.json.user.id, user.id);
  } finally {
    await srv2?.stop(); // first: srv.stop() removes the shared data directory
    await srv.stop();
  }
});

test('a burst of 20 concurrent sign-ups: every 201 received before kill -9 survives', async () => {
  const srv = await startServer();
  let srv2;
  try {
    const acked = [];
    let killing = null;
    const attempts = Array.from({ length: 20 }, () => {
      const username = uniqueName('burst');
      return srv.call('POST', '/v1/accounts', { body: { username, password: PASSWORD, display_name: 'Burst' } })
        .then((res) => {
          if (killing) return; // answered after the kill was sent: not counted either way
          if (res.status === 201) acked.push(res.json.user);
          // Kill while the rest are still in flight.
          if (acked.length >= 10) killing = srv.kill9();
        }, () => { /* cut off by the kill */ });
    });
    await Promise.all(attempts);
    await (killing ?? srv.kill9());
    assert.ok(acked.length >= 10, `only ${acked.length} sign-ups were acknowledged`);

    srv2 = await startServer({ dataDir: srv.dir });
    for (const user of acked) {
      const res = await login(srv2, user.username);
      assert.equal(res.status, 201, `${user.username} was acknowledged but is gone: ${res.text}`);
      assert.equal(res.json.user.id, user.id);
    }
  } finally {
    await srv2?.stop(); // first: srv.stop() removes the shared data directory
    await srv.stop();
  }
});

test('a log-out acknowledged with 204 stays done after kill -9', async () => {
  const srv = await startServer();
  let srv2;
  try {
    const { token, username } = await register(srv);
    const keep = (await login(srv, username)).json.token;
    assert.equal((await srv.call('DELETE', '/v1/sessions/current', { token })).status, 204);
    await srv.kill9();
    srv2 = await startServer({ dataDir: srv.dir });
    assert.equal((await srv2.call('GET', '/v1/me', { token })).status, 401);
    assert.equal((await srv2.call('GET', '/v1/me', { token: keep })).status, 200);
  } finally {
    await srv2?.stop(); // first: srv.stop() removes the shared data directory
    await srv.stop();
  }
});
