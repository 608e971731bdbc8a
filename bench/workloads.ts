/**
 * The workloads, written once against `Driver` so the baseline and Courier run exactly
 * the same client-side code. A driver is the thinnest adapter over each implementation.
 */
import {
  type Job,
  cpuUs,
  type MemSample,
  type Workload,
  formatBytes,
  mem,
  now,
  payloadOf,
  percentile,
  settledMem,
  sortedCopy,
  usSince,
} from './common';

/** What a workload needs from an RPC implementation. */
export interface Driver {
  /** call: returns its argument. */
  echo(payload: string): Promise<string>;
  /** cast: resolves once the broker holds it (publisher confirm). */
  bump(): Promise<void>;
  /** call: casts handled so far by the instance that answers. */
  count(): Promise<number>;
  /** call: resolves once the answering instance has handled `n` casts in total. */
  waitCount(n: number): Promise<number>;
  /** streamed call: yields `n` items. */
  stream(n: number): AsyncIterable<unknown>;
  /** fanout cast to every instance. */
  fanout(seq: number): Promise<void>;
}

export interface WorkloadEnv {
  driver: Driver;
  job: Job;
  /** Monotonic time at which the last instance handled fanout `seq`. Call before sending. */
  fanoutDone(seq: number): Promise<bigint>;
  /** Soak: let the orchestrator sample every process's memory now. */
  soakMark(tag: 'start' | 'sample' | 'end', mine: MemSample): void;
  /** The measured part starts or ends: let the orchestrator read the servers' CPU clocks. */
  cpuMark(phase: 'start' | 'end'): void;
}

/**
 * Brackets the measured part of a slice: returns a function that ends it and gives this
 * process's CPU time (µs) in between. The orchestrator reads the servers' alongside.
 */
function cpuRegion(env: WorkloadEnv): () => number {
  env.cpuMark('start');
  const c0 = cpuUs();
  return () => {
    const used = cpuUs() - c0;
    env.cpuMark('end');
    return used;
  };
}

/** Small call argument for the latency and throughput workloads. */
export const SMALL = payloadOf(16);
/** Casts kept in flight (awaiting their confirm) in the cast workload. */
export const CAST_WINDOW = 64;
/**
 * Most casts sent in one measurement. Sending only waits for the broker to hold each
 * message, so a client can outrun the server by far (memory:// above all); the cap keeps
 * the drain, and so the run, bounded.
 */
export const CAST_MAX = 50_000;
/** Calls in flight in the payload sweep. */
export const PAYLOAD_INFLIGHT = 8;
export const SOAK_INFLIGHT = 64;

/** Default case keys per workload; `--smoke` shrinks the multicall stream. */
export function casesFor(workload: Workload, smoke: boolean): number[] {
  switch (workload) {
    case 'seq':
      return [1];
    case 'concurrent':
      return [1, 16, 64, 256];
    case 'cast':
      return [CAST_WINDOW];
    case 'multicall':
      return [smoke ? 100 : 1000];
    case 'payload':
      return [100, 10 * 1024, 1024 * 1024];
    case 'fanout':
      return [1, 4, 16];
    case 'soak':
      return [SOAK_INFLIGHT];
  }
}

export function caseLabel(workload: Workload, key: number): string {
  switch (workload) {
    case 'seq':
      return `echo ${SMALL.length} B`;
    case 'concurrent':
    case 'cast':
    case 'soak':
      return `${key} in flight`;
    case 'multicall':
      return `${key} items/stream`;
    case 'payload':
      return `echo ${formatBytes(key)}`;
    case 'fanout':
      return `${key} instance${key === 1 ? '' : 's'}`;
  }
}

interface Limit {
  ms?: number;
  ops?: number;
}

/**
 * Runs `op` with `inflight` calls outstanding until the limit, recording each latency
 * (microseconds) into `lat` if given. Returns operations completed and seconds taken.
 */
export async function closedLoop(
  inflight: number,
  op: () => Promise<unknown>,
  limit: Limit,
  lat?: number[],
): Promise<{ ops: number; seconds: number }> {
  let started = 0;
  let done = 0;
  let stop = false;
  const t0 = now();
  // Checked on every operation, not by a timer: an in-process transport may settle
  // promises without ever yielding to the timer queue.
  const deadline = limit.ms !== undefined ? t0 + BigInt(Math.round(limit.ms * 1e6)) : undefined;
  const worker = async (): Promise<void> => {
    try {
      while (!stop && (limit.ops === undefined || started < limit.ops)) {
        started++;
        const t = now();
        await op();
        if (lat) lat.push(usSince(t));
        done++;
        if (deadline !== undefined && t >= deadline) stop = true;
      }
    } catch (err) {
      stop = true;
      throw err;
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  return { ops: done, seconds: Number(now() - t0) / 1e9 };
}

function warmLimit(job: Job): Limit {
  return job.plan.ops !== undefined ? { ops: job.plan.warmupOps ?? 0 } : { ms: job.plan.warmupMs };
}

function measureLimit(job: Job): Limit {
  return job.plan.ops !== undefined ? { ops: job.plan.ops } : { ms: job.plan.durationMs };
}

/** Warm up, then measure `op` at `inflight`. */
async function measure(
  env: WorkloadEnv,
  inflight: number,
  op: () => Promise<unknown>,
  lat?: number[],
): Promise<{ ops: number; seconds: number; clientCpuUs: number }> {
  await closedLoop(inflight, op, warmLimit(env.job));
  const done = cpuRegion(env);
  const r = await closedLoop(inflight, op, measureLimit(env.job), lat);
  return { ...r, clientCpuUs: done() };
}

function latencyMetrics(lat: number[]): Record<string, number> {
  const s = sortedCopy(lat);
  let sum = 0;
  for (const v of lat) sum += v;
  return { p50_us: percentile(s, 0.5), p99_us: percentile(s, 0.99), mean_us: sum / lat.length };
}

async function echoChecked(driver: Driver, payload: string): Promise<void> {
  const r = await driver.echo(payload);
  if (typeof r !== 'string' || r.length !== payload.length) {
    throw new Error(`echo returned ${typeof r === 'string' ? `${r.length} chars` : typeof r}, expected ${payload.length} chars`);
  }
}

/** Fanout sequence numbers stay unique across the slices a client runs. */
let fanoutSeq = 0;

/** Runs one slice of one case and returns its figures. */
export async function runCase(env: WorkloadEnv): Promise<Record<string, number>> {
  const { job, driver } = env;
  const key = job.key;
  switch (job.workload) {
    case 'seq': {
      const lat: number[] = [];
      const r = await measure(env, 1, () => echoChecked(driver, SMALL), lat);
      return { ...latencyMetrics(lat), calls: r.ops, calls_per_s: r.ops / r.seconds, client_cpu_us: r.clientCpuUs };
    }

    case 'concurrent': {
      const lat: number[] = [];
      const r = await measure(env, key, () => echoChecked(driver, SMALL), lat);
      return { calls_per_s: r.ops / r.seconds, calls: r.ops, p50_us: percentile(sortedCopy(lat), 0.5), client_cpu_us: r.clientCpuUs };
    }

    case 'cast': {
      const bump = () => driver.bump();
      // Warm-up, drained: the server must be idle when the measured casts start.
      const base = await driver.count();
      const warm = await closedLoop(key, bump, { ops: CAST_MAX / 10, ...warmLimit(job) });
      await driver.waitCount(base + warm.ops);

      const before = await driver.count();
      const done = cpuRegion(env);
      const t0 = now();
      const sent = await closedLoop(key, bump, { ops: CAST_MAX, ...measureLimit(job) });
      const handled = await driver.waitCount(before + sent.ops);
      const seconds = Number(now() - t0) / 1e9;
      const clientCpuUs = done();
      if (handled < before + sent.ops) {
        throw new Error(`server handled ${handled - before} of ${sent.ops} casts`);
      }
      return { msgs_per_s: sent.ops / seconds, msgs: sent.ops, confirmed_per_s: sent.ops / sent.seconds, client_cpu_us: clientCpuUs };
    }

    case 'multicall': {
      const op = async () => {
        let n = 0;
        for await (const item of driver.stream(key)) {
          if (item !== n) throw new Error(`stream item ${n} was ${JSON.stringify(item)}`);
          n++;
        }
        if (n !== key) throw new Error(`stream yielded ${n} items, expected ${key}`);
      };
      const r = await measure(env, 1, op);
      return { items_per_s: (r.ops * key) / r.seconds, items: r.ops * key, streams: r.ops, client_cpu_us: r.clientCpuUs };
    }

    case 'payload': {
      const payload = payloadOf(key);
      const r = await measure(env, PAYLOAD_INFLIGHT, () => echoChecked(driver, payload));
      const perS = r.ops / r.seconds;
      return { calls_per_s: perS, calls: r.ops, mib_per_s: (perS * key) / (1 << 20), client_cpu_us: r.clientCpuUs };
    }

    case 'fanout': {
      const lat: number[] = [];
      const round = async (record: boolean) => {
        const s = ++fanoutSeq;
        const t0 = now();
        const done = env.fanoutDone(s);
        await driver.fanout(s);
        const tAll = await done;
        if (record) lat.push(Number(tAll - t0) / 1000);
      };
      await closedLoop(1, () => round(false), warmLimit(job));
      const done = cpuRegion(env);
      const r = await closedLoop(1, () => round(true), measureLimit(job));
      const clientCpuUs = done();
      return { ...latencyMetrics(lat), rounds: r.ops, rounds_per_s: r.ops / r.seconds, client_cpu_us: clientCpuUs };
    }

    case 'soak': {
      const seconds = job.soakSeconds ?? 60;
      const op = () => echoChecked(driver, SMALL);
      await closedLoop(key, op, job.smoke ? { ops: 50 } : { ms: job.plan.warmupMs });
      const start = settledMem();
      env.soakMark('start', start);
      const sampler = setInterval(() => env.soakMark('sample', mem()), 5000);
      let r: { ops: number; seconds: number };
      try {
        r = await closedLoop(key, op, job.smoke ? { ops: 200 } : { ms: seconds * 1000 });
      } finally {
        clearInterval(sampler);
      }
      const end = settledMem();
      env.soakMark('end', end);
      return {
        calls_per_s: r.ops / r.seconds,
        calls: r.ops,
        seconds: r.seconds,
        client_rss_start: start.rss,
        client_rss_end: end.rss,
        client_heap_start: start.heapUsed,
        client_heap_end: end.heapUsed,
      };
    }
  }
}
