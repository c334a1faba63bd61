// bench/wallet.sh on a small load, against the plazad and bench_wallet under test and a real PostgreSQL 15: the HTTP
// rounds, the pgbench rounds, the checks that nothing was lost or doubled, and ledger verify over a built ledger all
// run and report. A benchmark that no longer runs fails here.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { PLAZAD, freePort, runBench } from './lib.mjs';

test('bench/wallet.sh runs every part on a small load and prints its table', { timeout: 600000 }, async () => {
  const out = await runBench('wallet.sh', {
    NO_BUILD: '1',
    BUILD: path.dirname(PLAZAD),
    ROUNDS: '1',
    DURATION: '4', // the least that reports CPU per transfer (its middle seconds)
    GRACE: '1',
    THREADS: '1',
    USERS: '5',
    CONNECTIONS: '10',
    PG_CLIENTS: '2',
    PG_ACCOUNTS: '1000',
    VERIFY_TRANSFERS: '2000',
    VERIFY_USERS: '20',
    VERIFY_RUNS: '1',
    LEDGER_DIR: '',
    PZ_PORT: String(await freePort()),
    PG_PORT: String(await freePort()),
  });
  const { stdout } = out;
  const cell = (name) => {
    const row = stdout.split('\n').find((l) => l.startsWith(`| ${name}`));
    assert.ok(row, `no row "${name}" in:\n${stdout}`);
    return row.split('|')[2].trim();
  };
  assert.match(cell('plazad, 10 connections: transfers/s per round'), /^[1-9]\d* \(median [1-9]\d*\)$/);
  assert.match(cell('PostgreSQL, 2 clients: transfers/s per round'), /^[1-9]\d* \(median [1-9]\d*\)$/);
  // Where a transfer's CPU goes: plazad's writer and event loop, and the load generator, each by name.
  const cpu = cell('... CPU per transfer in its last round');
  for (const name of ['pz-writer', 'loop', 'wrk']) assert.match(cpu, new RegExp(`(^| )${name}=\\d+\\.\\d( |$)`), cpu);
  // Every 201 is one transfer in the ledger with its idempotency record.
  const [, a, b, c] = cell('201s = transfers in the ledger').match(/^(\d+) = (\d+) = (\d+) \(ok\)$/);
  assert.ok(Number(a) > 0 && a === b && b === c, stdout);
  assert.equal(cell('plazad ledger verify after the rounds'), 'exit 0');
  const [, done, rows, before, after] = cell('PostgreSQL: transactions committed').match(/^(\d+) = (\d+), (\d+) = (\d+)$/);
  assert.ok(Number(done) > 0 && done === rows && before === after, stdout);
  assert.match(cell('plazad ledger verify over 2000 transfers, page cache cold'), /^\d+\.\d$/);
  assert.match(cell('plazad ledger verify over 2000 transfers, warm'), /^\d+\.\d; \d+\.\d$/);
});
