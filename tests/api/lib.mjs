// Helpers of the API tests: start the real plazad on loopback with a fresh data directory, call it, stop it.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import WebSocket from 'ws';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PLAZAD = path.resolve(ROOT, process.env.PLAZAD || 'build/plazad');

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts plazad with a fresh data directory (or `dataDir`, to restart on
 * the same data), with `env` added to the environment, and waits until
 * /healthz answers. Call `stop()` at the
 * end; `kill9()` kills it without warning and keeps the data directory.
 */
export async function startServer({ dataDir, env } = {}) {
  const dir = dataDir ?? mkdtempSync(path.join(tmpdir(), 'plaza-api-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(
    PLAZAD,
    ['--listen', `127.0.0.1:${port}`, '--data-dir', dir, '--web-dir', path.join(ROOT, 'web')],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  exited.then(() => { gone = true; });

  const deadline = Date.now() + 20000;
  for (;;) {
    if (gone) throw new Error(`plazad exited during start-up:\n${log}`);
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.status === 200) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`plazad did not answer /healthz within 20 s:\n${log}`);
    }
    await sleep(50);
  }

  const server = {
    base,
    port,
    dir,
    child,
    logs: () => log,
    url: (p) => base + p,
    wsUrl: (p = '/v1/ws') => `ws://127.0.0.1:${port}${p}`,
    /** Kills plazad with SIGKILL and keeps its data directory. */
    async kill9() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
    /**
     * Stops plazad gracefully and removes its data directory. Throws when
     * it does not exit cleanly (in a sanitizer build, a leak is a failure).
     */
    async stop({ keepData = false } = {}) {
      let result = null;
      if (!gone) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
        result = await exited;
        clearTimeout(timer);
      }
      if (!keepData) rmSync(dir, { recursive: true, force: true });
      if (result && result.code !== 0) {
        throw new Error(`plazad stopped with code ${result.code} signal ${result.signal}:\n${log.slice(-8000)}`);
      }
    },
    /**
     * One HTTP request. `body` is sent as JSON unless `raw` (a string or
     * Buffer) is given. Returns { status, headers, json, text }.
     */
    async call(method, p, { body, raw, token, headers = {} } = {}) {
      const h = { ...headers };
      let payload;
      if (raw !== undefined) {
        payload = raw;
        h['content-type'] ??= 'application/json';
      } else if (body !== undefined) {
        payload = JSON.stringify(body);
        h['content-type'] = 'application/json';
      }
      if (token) h.authorization = `Bearer ${token}`;
      const res = await fetch(base + p, { method, headers: h, body: payload });
      const text = await res.text();
      let json;
      try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
      return { status: res.status, headers: res.headers, json, text };
    },
  };
  return server;
}

let counter = 0;
/** A username no other test of this process uses: prefix + a counter + a random part. */
export function uniqueName(prefix = 'u') {
  counter += 1;
  const rand = Math.random().toString(36).slice(2, 8);
  return `${prefix}${counter}_${rand}`.toLowerCase().slice(0, 32);
}

export const PASSWORD = 'correct horse battery';

/** Signs up a user; returns { user, token, username, password }. Throws unless 201. */
export async function register(srv, { username = uniqueName(), password = PASSWORD, displayName, userAgent } = {}) {
  const headers = userAgent ? { 'user-agent': userAgent } : {};
  const res = await srv.call('POST', '/v1/accounts', {
    body: { username, password, display_name: displayName ?? `Name ${username}` },
    headers,
  });
  if (res.status !== 201) throw new Error(`sign-up of ${username} answered ${res.status}: ${res.text}`);
  return { user: res.json.user, token: res.json.token, username, password };
}

/** Logs in; returns the raw answer. */
export function login(srv, username, password = PASSWORD, headers = {}) {
  return srv.call('POST', '/v1/sessions', { body: { username, password }, headers });
}

/** Asserts the error envelope: status and code, and a non-empty message. */
export function expectError(assert, res, status, code) {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.ok(res.json && res.json.error, `no error envelope: ${res.text}`);
  assert.equal(res.json.error.code, code, `wrong code: ${res.text}`);
  assert.equal(typeof res.json.error.message, 'string');
  assert.ok(res.json.error.message.length > 0);
}

/**
 * Opens a WebSocket and collects what happens to it: `next()` resolves
 * with the next message (parsed), `closed` with { code, reason }.
 */
export function openWs(srv, p = '/v1/ws') {
  const ws = new WebSocket(srv.wsUrl(p));
  const queue = [];
  const waiters = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    const w = waiters.shift();
    if (w) w(msg); else queue.push(msg);
  });
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    ws,
    opened,
    closed,
    send: (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)),
    next: () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiters.push(resolve))),
  };
}

/** Opens a WebSocket, says hello with token and waits for the answer frame. */
export async function wsHello(srv, token) {
  const c = openWs(srv);
  await c.opened;
  c.send({ type: 'hello', token, since: 0 });
  const first = await c.next();
  return { ...c, first };
}

/**
 * Runs bench/<script> from the tree's root with env added to this process's;
 * resolves with its { stdout, stderr }, or rejects with the tails of both.
 */
export async function runBench(script, env) {
  try {
    return await promisify(execFile)(path.join(ROOT, 'bench', script), {
      cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 1 << 24,
    });
  } catch (e) {
    throw new Error(`bench/${script} failed (${e.code}):\n${e.stdout?.slice(-3000)}\n${e.stderr?.slice(-3000)}`);
  }
}
