// Shared setup for browser tests: start the real plazad on loopback with a fresh data dir, launch Debian's chromium.

import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const OUT = path.join(ROOT, 'tests/out');

export const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36',
};

export const DESKTOP = {
  viewport: { width: 1280, height: 800 },
  deviceScaleFactor: 1,
};

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts plazad (or $PLAZAD) on 127.0.0.1 and resolves once /healthz answers.
export async function startServer({ env } = {}) {
  const bin = process.env.PLAZAD || path.join(ROOT, 'build/plazad');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'plaza-browser-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--web-dir', path.join(ROOT, 'web')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const keep = (d) => { output = (output + d).slice(-20000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); });
    child.on('error', (err) => { exited = { err }; resolve(exited); });
  });

  const deadline = Date.now() + 20000;
  for (;;) {
    if (exited) throw new Error(`plazad exited before it was ready (${JSON.stringify(exited)}):\n${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`plazad did not answer /healthz within 20 s:\n${output}`);
    }
    await sleep(50);
  }

  return {
    url,
    dataDir,
    output: () => output,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exitPromise;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
}

// Collects uncaught page errors and console errors so a test can assert the
// app ran clean; a broken module shows up here before any selector times out.
export function watchErrors(page, label) {
  const errors = [];
  page.on('pageerror', (err) => errors.push(`${label}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/Failed to load resource|WebSocket connection/.test(msg.text())) {
      errors.push(`${label}: console: ${msg.text()}`);
    }
  });
  return errors;
}

export async function shot(page, name) {
  await mkdir(OUT, { recursive: true });
  // Let the toast and transitions settle so screenshots show the resting screen.
  await page.waitForTimeout(350);
  await page.screenshot({ path: path.join(OUT, `${name}.png`) });
}

/** One API request to server, as the user of token when given: { status, json, text }. */
export async function apiRequest(server, method, path, token, body) {
  const res = await fetch(server.url + path, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, text };
}

/** apiRequest that must succeed (2xx); returns the answer's JSON. */
export async function apiCall(server, method, path, token, body) {
  const res = await apiRequest(server, method, path, token, body);
  if (res.status < 200 || res.status > 299) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
  return res.json;
}

/** Waits until the first visible match of locator shows. */
export async function visible(locator, timeout = 10000) {
  await locator.filter({ visible: true }).first().waitFor({ state: 'visible', timeout });
}
