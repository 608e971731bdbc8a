/**
 * The benchmark harness itself: `bench/run.js --smoke` against the real broker must
 * exit 0 and produce figures for every workload, for Courier and for the raw amqplib
 * baseline alike (and for Courier on memory://), and leave nothing on the broker.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';

const AMQP_URL = process.env.RPC_TEST_AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672/';
const RUN_JS = path.resolve(__dirname, '..', '..', 'bench', 'run.js');

/** Every figure the table is built from: workload -> case key -> metric. */
const EXPECTED: Record<string, { keys: number[]; metrics: string[] }> = {
  seq: { keys: [1], metrics: ['p50_us', 'p99_us'] },
  concurrent: { keys: [1, 16, 64, 256], metrics: ['calls_per_s'] },
  cast: { keys: [64], metrics: ['msgs_per_s'] },
  multicall: { keys: [100], metrics: ['items_per_s'] },
  payload: { keys: [100, 10240, 1048576], metrics: ['calls_per_s'] },
  fanout: { keys: [1, 4, 16], metrics: ['p50_us'] },
};

interface CaseRecord {
  workload: string;
  impl: string;
  key: number;
  metrics: Record<string, number>;
}

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN_JS, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      env: { ...process.env, NO_COLOR: '1' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('bench --smoke', function () {
  this.timeout(60_000);

  it('measures every workload for Courier and the baseline, then exits 0', async () => {
    const json = path.join(os.tmpdir(), `courier-bench-smoke-${process.pid}-${Date.now()}.json`);
    try {
      const { code, out } = await run(['--smoke', '--url', AMQP_URL, '--json', json], 50_000);
      expect(code, out).to.equal(0);

      const report = JSON.parse(readFileSync(json, 'utf8')) as {
        results: CaseRecord[];
        rows: { workload: string; ratio?: number }[];
        errors: unknown[];
        cleanupFailures: unknown[];
      };
      expect(report.errors).to.deep.equal([]);
      expect(report.cleanupFailures).to.deep.equal([]);

      for (const impl of ['baseline', 'courier', 'memory']) {
        for (const [workload, { keys, metrics }] of Object.entries(EXPECTED)) {
          for (const key of keys) {
            const rec = report.results.find((r) => r.impl === impl && r.workload === workload && r.key === key);
            expect(rec, `${impl} ${workload} ${key}`).to.not.equal(undefined);
            for (const m of metrics) {
              const v = rec!.metrics[m];
              expect(Number.isFinite(v) && v > 0, `${impl} ${workload} ${key} ${m} = ${v}`).to.equal(true);
            }
          }
        }
      }
      for (const workload of Object.keys(EXPECTED)) {
        const rows = report.rows.filter((r) => r.workload === workload);
        expect(rows.length, workload).to.be.greaterThan(0);
        for (const r of rows) expect(Number.isFinite(r.ratio), `${workload} ratio`).to.equal(true);
      }
      expect(out).to.match(/Targets/);
    } finally {
      rmSync(json, { force: true });
    }
  });
});
