// Durability: whatever plazad acknowledged survives kill -9 of the process at any moment.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { PASSWORD, PLAZAD, ROOT, freePort, login, register, startServer, uniqueName } from './lib.mjs';

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

test('one plazad per data directory: a second one refuses to start and says which pid has it', async () => {
  const srv = await startServer();
  let srv2;
  try {
    const { username } = await register(srv);
    // A second server on the same directory (a second `make run`, say) would
    // write beside the first: it must stop at once, naming the first.
    const port = await freePort();
    const second = spawnSync(PLAZAD, ['--listen', `127.0.0.1:${port}`, '--data-dir', srv.dir, '--web-dir', path.join(ROOT, 'web')],
      { encoding: 'utf8', timeout: 20000 });
    assert.equal(second.status, 1, second.stdout + second.stderr);
    assert.match(second.stdout + second.stderr, new RegExp(`in use by another plazad \\(pid ${srv.child.pid}\\)`));
    // The first one never noticed.
    assert.equal((await login(srv, username)).status, 201);
    assert.equal((await register(srv)).user.username.length > 0, true);

    // The ledger check beside a running server reads a snapshot instead of
    // taking the write lock, and says so.
    const v = spawnSync(PLAZAD, ['ledger', 'verify', '--data-dir', srv.dir], { encoding: 'utf8', timeout: 60000 });
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(v.stderr, new RegExp(`a plazad \\(pid ${srv.child.pid}\\) is running on .*: checking a snapshot`));
    assert.match(v.stdout, /ledger verify: ok/);
    assert.equal((await register(srv)).user.username.length > 0, true);

    // kill -9 leaves no stale lock behind: the next start takes the directory.
    await srv.kill9();
    srv2 = await startServer({ dataDir: srv.dir });
    assert.equal((await login(srv2, username)).status, 201);
    await srv2.stop({ keepData: true });
    srv2 = null;
    // With the directory free, the check runs alone (and without the message).
    const alone = spawnSync(PLAZAD, ['ledger', 'verify', '--data-dir', srv.dir], { encoding: 'utf8', timeout: 60000 });
    assert.equal(alone.status, 0, alone.stdout + alone.stderr);
    assert.doesNotMatch(alone.stderr, /checking a snapshot/);
  } finally {
    await srv2?.stop();
    await srv.stop();
  }
});
