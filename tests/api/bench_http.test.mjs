// bench/http.sh on a tiny load, against the plazad under test and a real nginx: both servers answer, each round and
// the medians are printed. A benchmark that no longer runs fails here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PLAZAD, freePort, runBench } from './lib.mjs';

test('bench/http.sh runs plazad beside nginx and prints both rates and their ratio', { timeout: 120000 }, async () => {
  const out = await runBench('http.sh', {
    PLAZAD,
    ROUNDS: '1',
    DURATION: '1',
    CONNECTIONS: '10',
    THREADS: '1',
    PZ_PORT: String(await freePort()),
    NGX_PORT: String(await freePort()),
  });
  const round = out.stdout.match(/^round 1: plazad +(\d+) req\/s +nginx +(\d+) req\/s$/m);
  assert.ok(round, out.stdout);
  assert.ok(Number(round[1]) > 0 && Number(round[2]) > 0, round[0]);
  assert.match(out.stdout, /^median: plazad \d+ req\/s, nginx .* ratio plazad\/nginx \d+\.\d\d$/m);
});
