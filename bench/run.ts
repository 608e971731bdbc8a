/**
 * `npm run bench`: measures Courier against a hand-written amqplib RPC (the floor) in
 * the same run on the same broker, plus Courier on memory:// in one process.
 *
 * Every workload runs its server(s) and its client in separate forked processes; this
 * process only orchestrates: it forks, hands out slices, relays fanout completion,
 * samples memory, deletes what each stage declared, prints the table, writes the JSON.
 *
 * Fairness: the baseline's and Courier's processes of a stage are up together, and each
 * case is measured in `--reps` slices alternating between them (A B, B A, A B...), so
 * load from elsewhere on the machine hits both alike. A figure is the best slice.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BrokerAdmin, maskUrl } from './broker';
import {
  ENV,
  type FromWorker,
  type Impl,
  type Job,
  type MemSample,
  type Plan,
  type ToWorker,
  WORKLOADS,
  type Workload,
  errorMessage,
} from './common';
import { type ResultRecord, buildReport, renderTable } from './report';
import { caseLabel, casesFor } from './workloads';

const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672/';
const IMPLS: Impl[] = ['baseline', 'courier', 'memory'];
const ALIASES: Record<string, Workload> = {
  a: 'seq', b: 'concurrent', c: 'cast', d: 'multicall', e: 'payload', f: 'fanout',
  seq: 'seq', sequential: 'seq', concurrent: 'concurrent', cast: 'cast', casts: 'cast',
  multicall: 'multicall', payload: 'payload', fanout: 'fanout', soak: 'soak',
};

interface Options {
  workloads: Workload[];
  impls: Impl[];
  durationS: number;
  reps: number;
  url: string;
  smoke: boolean;
  soakS?: number;
  json?: string;
  strict: boolean;
}

const USAGE = `usage: node dist/bench/run.js [options]
  --workloads a,b,...   seq,concurrent,cast,multicall,payload,fanout (or a-f); default: all
  --duration <s>        seconds per measurement, split into --reps slices (default 2)
  --reps <n>            slices per measurement, alternating baseline/Courier (default 3)
  --url <amqp url>      broker (default $RPC_TRANSPORT_URL or ${DEFAULT_URL})
  --smoke               a few hundred calls per implementation, fast (for the test)
  --soak <s>            also run the memory soak: Courier at 64 in flight for <s> seconds
  --impl a,b            only some of baseline,courier,memory
  --json <file>         where to write the JSON (default bench/results/<timestamp>.json)
  --strict              exit 3 when a target fails`;

function parseArgs(argv: string[]): Options {
  const opts: Options = {
    workloads: WORKLOADS.filter((w) => w !== 'soak'),
    impls: IMPLS,
    durationS: 2,
    reps: 3,
    url: process.env.RPC_TRANSPORT_URL || DEFAULT_URL,
    smoke: false,
    strict: false,
  };
  let reps: number | undefined;
  const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) fail(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--workloads':
      case '--workload':
      case '-w':
        opts.workloads = list(value()).map((w) => ALIASES[w.toLowerCase()] ?? fail(`unknown workload "${w}"`));
        break;
      case '--impl':
        opts.impls = list(value()).map((v) => (IMPLS.includes(v as Impl) ? (v as Impl) : fail(`unknown impl "${v}"`)));
        break;
      case '--duration':
        opts.durationS = Number(value());
        if (!(opts.durationS > 0 && opts.durationS <= 600)) fail('--duration must be in (0, 600] seconds');
        break;
      case '--reps':
        reps = Number(value());
        if (!(Number.isInteger(reps) && reps >= 1 && reps <= 20)) fail('--reps must be an integer in [1, 20]');
        break;
      case '--url':
        opts.url = value();
        break;
      case '--smoke':
        opts.smoke = true;
        break;
      case '--soak':
        opts.soakS = Number(value());
        if (!(opts.soakS > 0 && opts.soakS <= 3600)) fail('--soak must be in (0, 3600] seconds');
        break;
      case '--json':
        opts.json = value();
        break;
      case '--strict':
        opts.strict = true;
        break;
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        fail(`unknown argument "${arg}"`);
    }
  }
  opts.reps = reps ?? (opts.smoke ? 1 : 3);
  if (opts.soakS !== undefined && !opts.workloads.includes('soak')) opts.workloads.push('soak');
  if (opts.workloads.includes('soak') && opts.soakS === undefined) opts.soakS = opts.smoke ? 1 : 60;
  opts.workloads = WORKLOADS.filter((w) => opts.workloads.includes(w));
  opts.impls = IMPLS.filter((i) => opts.impls.includes(i));
  return opts;
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------
// Plan: stages of cases sharing one set of processes.

interface Stage {
  workload: Workload;
  instances: number;
  cases: number[];
  /** Implementations up at once, whose slices alternate. */
  impls: Impl[];
}

const SMOKE_OPS: Record<Workload, [ops: number, warmup: number]> = {
  seq: [50, 10],
  concurrent: [25, 5],
  cast: [100, 10],
  multicall: [1, 1],
  payload: [8, 2],
  fanout: [3, 1],
  soak: [0, 0],
};

/** The plan of slice `rep` of a case: the first one warms up properly, later ones briefly. */
function planFor(workload: Workload, rep: number, opts: Options): Plan {
  if (opts.smoke) {
    const [ops, warmupOps] = SMOKE_OPS[workload];
    return { durationMs: 0, warmupMs: 0, ops, warmupOps: rep === 0 ? warmupOps : 0 };
  }
  const totalMs = opts.durationS * 1000;
  if (workload === 'soak') return { durationMs: (opts.soakS ?? 60) * 1000, warmupMs: 3000 };
  const firstWarmup = Math.min(1000, Math.max(200, totalMs / 4));
  return { durationMs: totalMs / opts.reps, warmupMs: rep === 0 ? firstWarmup : Math.min(100, firstWarmup) };
}

function buildStages(opts: Options): Stage[] {
  const stages: Stage[] = [];
  const onBroker = opts.impls.filter((i) => i !== 'memory');
  const inMemory = opts.impls.filter((i) => i === 'memory');
  for (const workload of opts.workloads) {
    const cases = casesFor(workload, opts.smoke);
    if (workload === 'soak') {
      if (opts.impls.includes('courier')) stages.push({ workload, instances: 1, cases, impls: ['courier'] });
      continue;
    }
    const sets = workload === 'fanout' ? cases.map((n) => ({ instances: n, cases: [n] })) : [{ instances: 1, cases }];
    for (const set of sets) {
      if (onBroker.length) stages.push({ workload, ...set, impls: onBroker });
      if (inMemory.length) stages.push({ workload, ...set, impls: inMemory });
    }
  }
  return stages;
}

function sliceCount(stage: Stage, opts: Options): number {
  return stage.cases.length * stage.impls.length * (stage.workload === 'soak' ? 1 : opts.reps);
}

/** Upper bound for one stage: the hard timeout of its processes. */
function stageBudgetMs(stage: Stage, opts: Options): number {
  let ms = 30_000 + 5_000 * stage.instances * stage.impls.length;
  const reps = stage.workload === 'soak' ? 1 : opts.reps;
  for (let rep = 0; rep < reps; rep++) {
    const plan = planFor(stage.workload, rep, opts);
    const slice = opts.smoke ? 8_000 : plan.durationMs + plan.warmupMs + 8_000;
    ms += slice * stage.cases.length * stage.impls.length;
  }
  return ms;
}

// ---------------------------------------------------------------------------------
// Processes.

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

process.on('exit', killAll);

/** A worker did not answer in time. */
class WaitTimeout extends Error {}

class Worker {
  readonly child: ChildProcess;
  private listeners = new Set<(m: FromWorker) => void>();
  exited = false;
  stderr = '';

  constructor(
    readonly name: string,
    script: string,
    env: Record<string, string>,
  ) {
    this.child = fork(path.join(__dirname, script), [], {
      env: { ...process.env, ...env },
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    live.add(this.child);
    // A send racing the child's exit fails with EPIPE; the exit itself is reported below.
    this.child.on('error', () => {});
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 20_000) this.stderr = this.stderr.slice(-10_000);
    });
    this.child.on('message', (m: FromWorker) => {
      for (const l of this.listeners) l(m);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      live.delete(this.child);
      for (const l of this.listeners) l({ type: 'error', message: `${this.name} exited (${signal ?? code})` });
    });
  }

  on(listener: (m: FromWorker) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  send(m: ToWorker): void {
    if (!this.exited && this.child.connected) this.child.send(m, () => {});
  }

  /** The next message of `type`; an error message or exit rejects. */
  waitFor<T extends FromWorker['type']>(type: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve, reject) => {
      if (this.exited) {
        reject(new Error(`${this.name} is not running`));
        return;
      }
      const timer = setTimeout(() => {
        off();
        reject(new WaitTimeout(`${this.name}: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on((m) => {
        if (m.type === type) {
          clearTimeout(timer);
          off();
          resolve(m as Extract<FromWorker, { type: T }>);
        } else if (m.type === 'error') {
          clearTimeout(timer);
          off();
          const tail = this.stderr.trim().split('\n').slice(-8).join('\n');
          reject(new Error(`${m.message}${tail ? `\n${tail}` : ''}`));
        }
      });
    });
  }

  /** Graceful stop, then SIGKILL if it lingers. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.exited) return;
    const stopped = this.waitFor('stopped', timeoutMs).catch(() => undefined);
    this.send({ type: 'stop' });
    await stopped;
    if (this.exited) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.child.kill('SIGKILL');
        resolve();
      }, 2000);
      this.child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------
// Progress on stderr: a bar redrawn in place on a TTY, one line per slice otherwise.

class Progress {
  private done = 0;
  private label = '';
  private phaseStart = Date.now();
  private phaseMs = 0;
  private readonly started = Date.now();
  private timer?: NodeJS.Timeout;
  private readonly tty = !!process.stderr.isTTY;

  constructor(private readonly total: number) {
    if (this.tty) this.timer = setInterval(() => this.draw(), 200).unref();
  }

  /** A slice starts; `done` slices are behind us. */
  start(done: number, label: string, phaseMs: number): void {
    this.done = Math.min(this.total, done);
    this.label = label;
    this.phaseStart = Date.now();
    this.phaseMs = phaseMs;
    if (this.tty) this.draw();
    else process.stderr.write(`[${this.done + 1}/${this.total}] ${label}\n`);
  }

  note(message: string): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`${message}\n`);
    if (this.tty) this.draw();
  }

  private draw(): void {
    const within = this.phaseMs > 0 ? Math.min(0.95, (Date.now() - this.phaseStart) / this.phaseMs) : 0;
    const frac = Math.min(1, (this.done + within) / this.total);
    const width = 30;
    const fill = Math.round(frac * width);
    const secs = Math.round((Date.now() - this.started) / 1000);
    const cols = process.stderr.columns || 100;
    const line = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(Math.round(frac * 100)).padStart(3)}%  ${secs}s  ${this.label}`;
    process.stderr.write(`\r\x1b[2K${line.slice(0, cols - 1)}`);
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.tty) process.stderr.write('\r\x1b[2K');
  }
}

// ---------------------------------------------------------------------------------
// One stage: fork every implementation's processes, alternate slices, stop, clean up.

/** How long a slice may overrun its planned duration before it counts as stuck. */
const SLICE_SLACK_MS = 30_000;

const SCRIPTS: Record<Impl, { server?: string; client: string }> = {
  baseline: { server: 'baseline/server.js', client: 'baseline/client.js' },
  courier: { server: 'courier/server.js', client: 'courier/client.js' },
  memory: { client: 'courier/memory.js' },
};

interface Ctx {
  opts: Options;
  runId: string;
  progress: Progress;
  slicesDone: number;
  admin: BrokerAdmin;
  exchanges: Record<Impl, string>;
  /** Every queue and exchange this run may have left, for the final sweep. */
  leftovers: { queues: Set<string>; exchanges: Set<string> };
  workers: Set<Worker>;
  topics: number;
  marks: number;
  /** Soak: memory of the client and servers at start, every 5 s, and at the end. */
  soakSeries: { t: number; tag: string; client: MemSample; servers: MemSample[] }[];
}

/** One implementation's processes within a stage. */
interface Member {
  impl: Impl;
  topic: string;
  hosts: string[];
  servers: Worker[];
  client?: Worker;
  /** Set when its client broke: its remaining slices are skipped. */
  broken?: string;
  soakMem: Record<string, Promise<MemSample[]>>;
  /** The servers' summed CPU clocks (µs) at the start and end of the current slice's measured part. */
  cpu: { start?: Promise<number>; end?: Promise<number> };
}

export interface SliceRecord {
  workload: Workload;
  key: number;
  impl: Impl;
  rep: number;
  metrics: Record<string, number>;
}

export interface StageError {
  workload: Workload;
  impl: Impl;
  instances: number;
  key?: number;
  error: string;
}

/** Best slice per metric: highest rate, lowest latency and CPU cost; counts are summed. */
function best(slices: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of Object.keys(slices[0])) {
    const values = slices.map((s) => s[name]).filter((v) => Number.isFinite(v));
    if (!values.length) continue;
    if (name.endsWith('_us') || name.endsWith('_per_op')) out[name] = Math.min(...values);
    else if (name.endsWith('_per_s')) out[name] = Math.max(...values);
    else if (/^(calls|msgs|items|streams|rounds|seconds)$/.test(name)) out[name] = values.reduce((a, b) => a + b, 0);
    else out[name] = values[values.length - 1];
  }
  return out;
}

async function runStage(
  stage: Stage,
  ctx: Ctx,
  slices: SliceRecord[],
  errors: StageError[],
): Promise<ResultRecord[]> {
  const { opts } = ctx;
  const budget = stageBudgetMs(stage, opts);
  const reps = stage.workload === 'soak' ? 1 : opts.reps;
  const members: Member[] = stage.impls.map((impl) => {
    const topic = `bench-${ctx.runId}-${ctx.topics++}`;
    const hosts = Array.from({ length: impl === 'memory' ? 0 : stage.instances }, (_, i) => `${topic}-host${i}`);
    if (impl !== 'memory') {
      ctx.leftovers.queues.add(topic);
      if (impl === 'courier') for (const h of hosts) ctx.leftovers.queues.add(`${topic}.${h}`);
      ctx.leftovers.exchanges.add(`${topic}_fanout`);
      ctx.leftovers.exchanges.add(ctx.exchanges[impl]);
    }
    return { impl, topic, hosts, servers: [], soakMem: {}, cpu: {} };
  });
  const env = (m: Member, host: string): Record<string, string> => ({
    [ENV.url]: m.impl === 'memory' ? 'memory://' : opts.url,
    [ENV.topic]: m.topic,
    [ENV.exchange]: ctx.exchanges[m.impl],
    [ENV.host]: host,
    [ENV.instances]: String(stage.instances),
    [ENV.hardTimeoutMs]: String(budget),
  });
  const spawn = (name: string, script: string, e: Record<string, string>): Worker => {
    const w = new Worker(name, script, e);
    ctx.workers.add(w);
    return w;
  };
  const failed = (m: Member, err: unknown, key?: number) => {
    const error = errorMessage(err);
    errors.push({ workload: stage.workload, impl: m.impl, instances: stage.instances, key, error });
    ctx.progress.note(`bench: ${stage.workload}/${m.impl}${key !== undefined ? ` ${caseLabel(stage.workload, key)}` : ''}: ${error}`);
  };

  const deadline = Date.now() + budget;
  const left = () => Math.max(1000, deadline - Date.now());
  const results: ResultRecord[] = [];
  try {
    // Servers first (all of them at once), then one client per implementation.
    await Promise.all(
      members.map(async (m) => {
        try {
          const script = SCRIPTS[m.impl];
          if (script.server) {
            m.servers = m.hosts.map((h) => spawn(`${m.impl} server ${h}`, script.server!, env(m, h)));
            await Promise.all(m.servers.map((s) => s.waitFor('ready', 60_000)));
          }
          m.client = spawn(`${m.impl} client`, script.client, env(m, `${m.topic}-client`));
          await m.client.waitFor('ready', 60_000);
        } catch (err) {
          m.broken = errorMessage(err);
          failed(m, err);
        }
      }),
    );

    for (const m of members) {
      // Fanout: count each instance's hit, tell the client when the last one had it.
      const hits = new Map<number, { n: number; last: bigint }>();
      for (const s of m.servers) {
        s.on((msg) => {
          if (msg.type !== 'hit') return;
          const t = BigInt(msg.t);
          const h = hits.get(msg.seq) ?? { n: 0, last: 0n };
          h.n++;
          if (t > h.last) h.last = t;
          hits.set(msg.seq, h);
          if (h.n === stage.instances) {
            hits.delete(msg.seq);
            m.client?.send({ type: 'fanout-done', seq: msg.seq, t: h.last.toString() });
          }
        });
      }
      // CPU: read every server's clock when the client starts and ends measuring.
      m.client?.on((msg) => {
        if (msg.type !== 'cpu-mark') return;
        const tag = `${msg.phase}-${++ctx.marks}`;
        m.cpu[msg.phase] = Promise.all(m.servers.map((s) => ask<number>(s, 'cpu', tag))).then((xs) => xs.reduce((a, b) => a + b, 0));
      });
      // Soak: when the client marks a point, sample every server at the same moment.
      m.client?.on((msg) => {
        if (msg.type !== 'soak-mark') return;
        const servers = Promise.all(m.servers.map((s) => memOf(s, `${msg.tag}-${ctx.soakSeries.length}`)));
        m.soakMem[msg.tag] = servers;
        const point = { t: Date.now(), tag: msg.tag, client: msg.mem, servers: [] as MemSample[] };
        ctx.soakSeries.push(point);
        servers.then((xs) => (point.servers = xs)).catch(() => {});
      });
    }

    for (const key of stage.cases) {
      const perImpl = new Map<Impl, Record<string, number>[]>();
      for (let rep = 0; rep < reps; rep++) {
        const order = rep % 2 === 0 ? members : [...members].reverse();
        for (const m of order) {
          const label = `${stage.workload} ${caseLabel(stage.workload, key)} · ${m.impl}${stage.instances > 1 ? ` ×${stage.instances}` : ''}${reps > 1 ? ` (${rep + 1}/${reps})` : ''}`;
          const plan = planFor(stage.workload, rep, opts);
          ctx.progress.start(ctx.slicesDone, label, plan.durationMs + plan.warmupMs);
          if (!m.broken && m.client) {
            const job: Job = { workload: stage.workload, key, plan, smoke: opts.smoke, instances: stage.instances, soakSeconds: opts.soakS };
            try {
              // A slice that overruns its plan by far is stuck (a lost reply, a hung server).
              const sliceMs = Math.round((opts.smoke ? 0 : plan.durationMs + plan.warmupMs) + SLICE_SLACK_MS);
              const reply = m.client.waitFor('result', Math.min(left(), sliceMs));
              m.client.send({ type: 'run', job });
              m.cpu = {};
              const { metrics } = await reply;
              let serverCpu: number | undefined;
              if (m.servers.length && m.cpu.start && m.cpu.end) {
                const [a, b] = await Promise.all([m.cpu.start, m.cpu.end]).catch(() => [NaN, NaN]);
                if (Number.isFinite(a) && Number.isFinite(b)) serverCpu = b - a;
              }
              cpuPerOp(metrics, serverCpu);
              slices.push({ workload: stage.workload, key, impl: m.impl, rep, metrics });
              perImpl.set(m.impl, [...(perImpl.get(m.impl) ?? []), metrics]);
            } catch (err) {
              failed(m, err, key);
              if (m.client.exited || Date.now() >= deadline || err instanceof WaitTimeout) {
                m.broken = errorMessage(err);
                m.client.kill();
              }
            }
          }
          ctx.slicesDone++;
        }
      }
      for (const m of members) {
        const got = perImpl.get(m.impl);
        if (!got?.length) continue;
        const metrics = best(got);
        if (stage.workload === 'soak') Object.assign(metrics, await soakServerFigures(m));
        results.push({ workload: stage.workload, key, label: caseLabel(stage.workload, key), impl: m.impl, metrics });
      }
    }
  } finally {
    await Promise.all(
      members.flatMap((m) => [
        ...(m.client ? [m.client.stop(10_000)] : []),
        ...m.servers.map((s) => s.stop(10_000)),
      ]),
    );
    for (const m of members) for (const w of [m.client, ...m.servers]) if (w) ctx.workers.delete(w);
    const queues = members.flatMap((m) => (m.impl === 'memory' ? [] : [m.topic, ...(m.impl === 'courier' ? m.hosts.map((h) => `${m.topic}.${h}`) : [])]));
    const exchanges = members.filter((m) => m.impl !== 'memory').map((m) => `${m.topic}_fanout`);
    if (queues.length) {
      const failures = await ctx.admin.delete(queues, exchanges).catch((e: unknown) => [errorMessage(e)]);
      for (const f of failures) ctx.progress.note(`bench: cleanup: ${f}`);
      for (const q of queues) ctx.leftovers.queues.delete(q);
      for (const x of exchanges) ctx.leftovers.exchanges.delete(x);
    }
  }
  return results;
}

/** Asks a server a question, tagged so that a late answer to another request cannot pass for it. */
function ask<T>(server: Worker, kind: 'mem' | 'cpu', tag: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${server.name}: no ${kind} sample "${tag}"`));
    }, 10_000);
    const off = server.on((m) => {
      if (m.type === kind && m.tag === tag) {
        clearTimeout(timer);
        off();
        resolve((m.type === 'mem' ? m.mem : m.us) as T);
      }
    });
    server.send(kind === 'mem' ? { type: 'mem?', tag } : { type: 'cpu?', tag });
  });
}

const memOf = (server: Worker, tag: string) => ask<MemSample>(server, 'mem', tag);

/** Turns a slice's CPU totals into CPU µs per operation (call, cast, item or fanout round). */
function cpuPerOp(metrics: Record<string, number>, serverCpuUs: number | undefined): void {
  const ops = metrics.calls ?? metrics.msgs ?? metrics.items ?? metrics.rounds;
  const client = metrics.client_cpu_us;
  delete metrics.client_cpu_us;
  if (!(ops > 0) || client === undefined) return;
  metrics.client_cpu_us_per_op = client / ops;
  if (serverCpuUs !== undefined) metrics.server_cpu_us_per_op = serverCpuUs / ops;
  metrics.cpu_us_per_op = (client + (serverCpuUs ?? 0)) / ops;
}

async function soakServerFigures(m: Member): Promise<Record<string, number>> {
  const sum = (xs: MemSample[] | undefined, k: keyof MemSample) => xs?.reduce((a, x) => a + x[k], 0) ?? NaN;
  const start = await m.soakMem.start?.catch(() => undefined);
  const end = await m.soakMem.end?.catch(() => undefined);
  return {
    server_rss_start: sum(start, 'rss'),
    server_rss_end: sum(end, 'rss'),
    server_heap_start: sum(start, 'heapUsed'),
    server_heap_end: sum(end, 'heapUsed'),
  };
}

// ---------------------------------------------------------------------------------

function timestamp(d: Date): string {
  return d.toISOString().replace(/:/g, '-');
}

/** Deletes everything the run may have declared (RabbitMQ ignores names it does not know). */
async function sweep(ctx: Ctx): Promise<string[]> {
  for (const w of ctx.workers) w.kill();
  if (!ctx.leftovers.queues.size && !ctx.leftovers.exchanges.size) return [];
  const failures = await ctx.admin
    .delete([...ctx.leftovers.queues], [...ctx.leftovers.exchanges])
    .catch((e: unknown) => [errorMessage(e)]);
  ctx.leftovers.queues.clear();
  ctx.leftovers.exchanges.clear();
  return failures;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const runId = randomBytes(4).toString('hex');
  const startedAt = new Date();
  const stages = buildStages(opts);
  const progress = new Progress(stages.reduce((n, s) => n + sliceCount(s, opts), 0));
  const admin = new BrokerAdmin(opts.url);
  const ctx: Ctx = {
    opts,
    runId,
    progress,
    slicesDone: 0,
    admin,
    exchanges: { baseline: `bench-${runId}-baseline`, courier: `bench-${runId}-courier`, memory: `bench-${runId}-memory` },
    leftovers: { queues: new Set(), exchanges: new Set() },
    workers: new Set(),
    topics: 0,
    marks: 0,
    soakSeries: [],
  };
  const onBroker = opts.impls.some((i) => i !== 'memory');
  if (onBroker) await admin.connect();

  // The whole run stops by itself, within the sum of its stages' budgets.
  const watchdogMs = stages.reduce((n, s) => n + stageBudgetMs(s, opts), 10_000);
  let aborted = false;
  const abort = async (why: string, code: number) => {
    aborted = true;
    progress.finish();
    process.stderr.write(`bench: ${why}; killing workers and cleaning up\n`);
    killAll();
    await sweep(ctx).catch(() => {});
    process.exit(code);
  };
  setTimeout(() => void abort(`run exceeded ${Math.round(watchdogMs / 1000)} s`, 124), watchdogMs).unref();
  process.once('SIGINT', () => void abort('interrupted', 130));
  process.once('SIGTERM', () => void abort('terminated', 143));
  process.on('uncaughtException', (err) => void abort(`internal error: ${errorMessage(err)}`, 1));

  const records: ResultRecord[] = [];
  const slices: SliceRecord[] = [];
  const errors: StageError[] = [];
  const timings: { workload: Workload; impls: Impl[]; instances: number; seconds: number }[] = [];
  for (const stage of stages) {
    if (aborted) break;
    const t0 = Date.now();
    try {
      records.push(...(await runStage(stage, ctx, slices, errors)));
    } catch (err) {
      errors.push({ workload: stage.workload, impl: stage.impls[0], instances: stage.instances, error: errorMessage(err) });
    }
    timings.push({ workload: stage.workload, impls: stage.impls, instances: stage.instances, seconds: (Date.now() - t0) / 1000 });
  }
  const cleanupFailures = onBroker ? await sweep(ctx) : [];
  await admin.close();
  progress.finish();

  const report = buildReport(records, opts.workloads, opts.soakS !== undefined, opts.smoke);
  const finishedAt = new Date();
  const seconds = (finishedAt.getTime() - startedAt.getTime()) / 1000;
  const out = {
    version: 1,
    runId,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    seconds,
    options: { ...opts, url: maskUrl(opts.url) },
    method:
      'Each case is measured in `reps` slices alternating between implementations; ' +
      'a figure is the best slice (highest rate, lowest latency). All slices are under `slices`.',
    environment: {
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      loadavg: os.loadavg(),
    },
    results: records,
    rows: report.rows,
    targets: report.targets,
    errors,
    cleanupFailures,
    stages: timings,
    soakSeries: ctx.soakSeries,
    slices,
  };
  const file = opts.json ?? path.resolve(__dirname, '..', '..', 'bench', 'results', `${timestamp(startedAt)}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);

  const color = !!process.stdout.isTTY && !process.env.NO_COLOR;
  const how = opts.smoke ? 'smoke' : `${opts.durationS} s per measurement in ${opts.reps} alternating slices, best slice`;
  process.stdout.write(
    `\nCourier vs raw amqplib on ${onBroker ? maskUrl(opts.url) : 'memory:// only'} (${how}; ` +
      `node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}; ${seconds.toFixed(0)} s)\n\n`,
  );
  process.stdout.write(`${renderTable(report, color)}\n`);
  for (const e of errors) {
    process.stdout.write(`\nERROR ${e.workload}/${e.impl}${e.key !== undefined ? ` ${caseLabel(e.workload, e.key)}` : ''}: ${e.error}\n`);
  }
  for (const l of cleanupFailures) process.stdout.write(`cleanup failed: ${l}\n`);
  process.stdout.write(`\nJSON: ${file}\n`);

  if (errors.length || cleanupFailures.length) return 1;
  if (opts.strict && report.targets.some((t) => t.pass === false)) return 3;
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Nothing should be left running; make sure of it.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (err) => {
    process.stderr.write(`bench: ${errorMessage(err)}\n`);
    killAll();
    process.exit(1);
  },
);
