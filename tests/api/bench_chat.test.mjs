// bench/chat.sh end to end on a small load, against the plazad under test and its bench_chat: every phase runs,
// loses nothing and reports, beside a real mosquitto. A benchmark that no longer runs fails here, not in the next
// person's hands (one did, for a session).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { PLAZAD, freePort, runBench } from './lib.mjs';

test('bench/chat.sh runs every phase on a small load and prints its table', { timeout: 600000 }, async () => {
  const out = await runBench('chat.sh', {
    NO_BUILD: '1',
    BUILD: path.dirname(PLAZAD),
    ROUNDS: '1',
    MESSAGES: '3000',
    PAIRS: '5',
    USERS: '20',
    LAT_SECONDS: '2',
    LAT_RATE: 'half', // of this small run's 1:1 rate: the default, 25,000 msg/s, is for a release build
    FANOUT: '3',
    IDLE: '40',
    PER_PROC: '20',
    MQTT_PAIRS: '1',
    PZ_PORT: String(await freePort()),
    MQTT_PORT: String(await freePort()),
  });
  const { stdout, stderr } = out;
  // Each phase's own line: everything acked and delivered once.
  assert.match(stderr, /^throughput pairs=5 .*messages=3000 acked=3000 delivered=3000 .*lost=0 dup=0 /m);
  assert.match(stderr, /^mosquitto round=1 messages=3000 delivered=3000 rate=\d+/m);
  assert.match(stderr, /^latency pairs=5 .* lost=0 dup=0 .*p99_ms=[\d.]+/m);
  // ... and again with the receivers' delivered receipts, none refused.
  assert.match(stderr, /^latency pairs=5 .* lost=0 dup=0 .*p99_ms=[\d.]+ .*receipt_ms=200 receipts=[1-9]\d*/m);
  assert.doesNotMatch(stderr, /failed=/);
  assert.match(stderr, /^fanout members=20 .*messages=3 acked=3 /m);
  assert.match(stderr, /^ {2}server: 0 logged messages not yet in the database after \d+ ms of waiting$/m);
  // The table, a number in every result cell.
  const rows = stdout.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| measure'));
  const names = ['1:1 durable msg/s', 'mosquitto QoS 0 msg/s', 'ratio plazad / mosquitto', 'latency send -> delivered',
    '... with delivered receipts', 'fan-out to 20 members', 'plazad RSS per idle authenticated WebSocket at 40'];
  for (const name of names) {
    const row = rows.find((l) => l.startsWith(`| ${name}`));
    assert.ok(row, `no row "${name}" in:\n${stdout}`);
    assert.match(row.split('|')[2], /\d/, row);
  }
});
