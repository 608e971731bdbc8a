/**
 * What every bench process shares: the jobs and IPC messages between the orchestrator
 * (`run.ts`) and its workers, the server-side state both implementations run, and small
 * measuring helpers. No broker code here.
 */

/** Workloads, in the order they run and print. `soak` only runs with `--soak`. */
export const WORKLOADS = ['seq', 'concurrent', 'cast', 'multicall', 'payload', 'fanout', 'soak'] as const;
export type Workload = (typeof WORKLOADS)[number];

/** Who answers: the hand-written amqplib floor, Courier on RabbitMQ, Courier in memory. */
export type Impl = 'baseline' | 'courier' | 'memory';

/** Environment handed to every worker (the Courier service reads its topic at import). */
export const ENV = {
  url: 'BENCH_URL',
  topic: 'BENCH_TOPIC',
  exchange: 'BENCH_EXCHANGE',
  host: 'BENCH_HOST',
  /** In-process implementations (memory://) host this many server instances. */
  instances: 'BENCH_INSTANCES',
  hardTimeoutMs: 'BENCH_HARD_TIMEOUT_MS',
} as const;

/** How long one slice measures: for a duration (normal runs) or a fixed number of operations (`--smoke`). */
export interface Plan {
  durationMs: number;
  warmupMs: number;
  /** Set in smoke mode: run exactly this many operations instead of a duration. */
  ops?: number;
  warmupOps?: number;
}

/**
 * One slice of one case, run by a client process. A case is measured in several slices,
 * alternating between implementations, so that load from elsewhere hits both alike.
 */
export interface Job {
  workload: Workload;
  /** The case: in-flight count, payload size, stream length or instance count. */
  key: number;
  plan: Plan;
  smoke: boolean;
  /** Server instances answering (fanout waits for all of them). */
  instances: number;
  /** Soak only: seconds to run at 64 in flight. */
  soakSeconds?: number;
}

export interface CaseResult {
  workload: Workload;
  /** The case key, e.g. 64 (in flight), 10240 (bytes), 4 (instances). */
  key: number;
  /** Human label of the case, e.g. "64 in flight". */
  label: string;
  metrics: Record<string, number>;
}

export interface MemSample {
  rss: number;
  heapUsed: number;
}

/** Orchestrator -> worker. */
export type ToWorker =
  | { type: 'run'; job: Job }
  | { type: 'fanout-done'; seq: number; t: string }
  | { type: 'mem?'; tag: string }
  | { type: 'cpu?'; tag: string }
  | { type: 'stop' };

/** Worker -> orchestrator. */
export type FromWorker =
  | { type: 'ready'; mem: MemSample }
  | { type: 'hit'; seq: number; t: string }
  | { type: 'mem'; tag: string; mem: MemSample }
  | { type: 'soak-mark'; tag: string; mem: MemSample }
  /** The measured part of a slice starts or ends: time to read the servers' CPU clocks. */
  | { type: 'cpu-mark'; phase: 'start' | 'end' }
  | { type: 'cpu'; tag: string; us: number }
  | { type: 'result'; metrics: Record<string, number> }
  | { type: 'error'; message: string }
  | { type: 'stopped'; mem: MemSample };

/**
 * The server-side work, shared by the baseline server and the Courier service so both
 * do exactly the same thing per message.
 */
export class BenchState {
  casts = 0;
  private waiters: { n: number; resolve: (count: number) => void }[] = [];

  /** Called for every fanout message this instance handles. */
  constructor(private readonly onFanout: (seq: number) => void = () => {}) {}

  bump(): void {
    this.casts++;
    if (this.waiters.length) {
      this.waiters = this.waiters.filter((w) => {
        if (this.casts < w.n) return true;
        w.resolve(this.casts);
        return false;
      });
    }
  }

  /** Resolves once `n` casts have been handled here (or after `timeoutMs`, with the count so far). */
  waitCount(n: number, timeoutMs = 60_000): Promise<number> {
    if (this.casts >= n) return Promise.resolve(this.casts);
    return new Promise((resolve) => {
      const waiter = {
        n,
        resolve: (count: number) => {
          clearTimeout(timer);
          resolve(count);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(this.casts);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  fanoutHit(seq: number): void {
    this.onFanout(seq);
  }
}

/** The items a stream yields: small numbers, so the figure is about messages, not bytes. */
export async function* streamItems(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) yield i;
}

/** Monotonic nanoseconds; CLOCK_MONOTONIC on Linux, so comparable across processes. */
export const now = (): bigint => process.hrtime.bigint();
export const usSince = (t0: bigint): number => Number(now() - t0) / 1000;

export function mem(): MemSample {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed };
}

/** Memory after a full GC when the process runs with `--expose-gc`, so samples compare. */
/** CPU time (user + system) this process has used, in microseconds. */
export function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

export function settledMem(): MemSample {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  return mem();
}

export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function sortedCopy(values: number[]): Float64Array {
  return Float64Array.from(values).sort();
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An ASCII string of exactly `bytes` bytes (as UTF-8 and as JSON). */
export function payloadOf(bytes: number): string {
  return 'x'.repeat(bytes);
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1 << 20) return `${+(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${+(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} B`;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** A one-producer, one-consumer async queue: turns pushed messages into an AsyncIterable. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private head = 0;
  private waiting?: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void };
  private ended = false;
  private failure: unknown;

  push(item: T): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  end(): void {
    this.ended = true;
    this.flush();
  }

  fail(err: unknown): void {
    this.failure = err ?? new Error('stream failed');
    this.flush();
  }

  private flush(): void {
    if (!this.waiting || this.head < this.items.length) return;
    const w = this.waiting;
    this.waiting = undefined;
    if (this.failure) w.reject(this.failure);
    else w.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.head < this.items.length) {
          const value = this.items[this.head++];
          if (this.head > 1024 && this.head * 2 > this.items.length) {
            this.items = this.items.slice(this.head);
            this.head = 0;
          }
          return Promise.resolve({ value, done: false });
        }
        if (this.failure) return Promise.reject(this.failure);
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiting = { resolve, reject };
        });
      },
    };
  }
}
