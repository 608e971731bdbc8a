/**
 * The life of a forked bench process: IPC with the orchestrator, a hard timeout, and
 * exit when the orchestrator goes away. Server and client entry points of both
 * implementations are thin wrappers over `runServer` and `runClient`.
 */
import {
  BenchState,
  ENV,
  type FromWorker,
  type Job,
  type MemSample,
  type ToWorker,
  cpuUs,
  errorMessage,
  mem,
  now,
  settledMem,
} from './common';
import { type Driver, type WorkloadEnv, runCase } from './workloads';

export function send(msg: FromWorker): void {
  if (process.send && process.connected) process.send(msg);
}

function sendThenExit(msg: FromWorker, code: number): void {
  if (process.send && process.connected) {
    process.send(msg, () => process.exit(code));
    setTimeout(() => process.exit(code), 1000).unref();
  } else {
    process.exit(code);
  }
}

/** Every worker dies on its own: at its hard timeout, or when the orchestrator is gone. */
export function guard(role: string): void {
  const hard = Number(process.env[ENV.hardTimeoutMs] ?? 0) || 300_000;
  setTimeout(() => {
    process.stderr.write(`bench ${role} (pid ${process.pid}): hard timeout of ${hard} ms, exiting\n`);
    process.exit(124);
  }, hard).unref();
  process.on('disconnect', () => process.exit(2));
  process.on('unhandledRejection', (err) => {
    sendThenExit({ type: 'error', message: `${role}: unhandled rejection: ${errorMessage(err)}` }, 1);
  });
}

export function requireEnv(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`bench worker: environment variable ${name} is not set`);
  return v;
}

function memFor(tag: string): MemSample {
  return tag.startsWith('sample') ? mem() : settledMem();
}

export interface ServerHandle {
  stop(): Promise<void>;
}

/** A server process: answers until told to stop, reports fanout hits over IPC. */
export async function runServer(role: string, start: (state: BenchState) => Promise<ServerHandle>): Promise<void> {
  guard(role);
  let server: ServerHandle;
  const state = new BenchState((seq) => send({ type: 'hit', seq, t: now().toString() }));
  try {
    server = await start(state);
  } catch (err) {
    sendThenExit({ type: 'error', message: `${role} failed to start: ${errorMessage(err)}` }, 1);
    return;
  }
  process.on('message', (m: ToWorker) => {
    if (m.type === 'mem?') send({ type: 'mem', tag: m.tag, mem: memFor(m.tag) });
    else if (m.type === 'cpu?') send({ type: 'cpu', tag: m.tag, us: cpuUs() });
    else if (m.type === 'stop') {
      server.stop().then(
        () => sendThenExit({ type: 'stopped', mem: mem() }, 0),
        (err) => sendThenExit({ type: 'error', message: `${role} failed to stop: ${errorMessage(err)}` }, 1),
      );
    }
  });
  send({ type: 'ready', mem: mem() });
}

export interface ClientHandle {
  driver: Driver;
  close(): Promise<void>;
  /** In-process servers (memory://) know fanout completion themselves. */
  fanoutDone?: (seq: number) => Promise<bigint>;
}

const FANOUT_TIMEOUT_MS = 10_000;

/**
 * A client process: connects (an in-process implementation also hosts its servers
 * here), says ready, then runs one slice per `run` message until told to stop.
 */
export function runClient(role: string, connect: () => Promise<ClientHandle>): void {
  guard(role);
  const fanoutWaiters = new Map<number, (t: bigint) => void>();

  const ipcFanoutDone = (seq: number): Promise<bigint> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        fanoutWaiters.delete(seq);
        reject(new Error(`fanout ${seq}: not every instance had it after ${FANOUT_TIMEOUT_MS} ms`));
      }, FANOUT_TIMEOUT_MS);
      fanoutWaiters.set(seq, (t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });

  let handle: ClientHandle | undefined;
  let running: Promise<void> = Promise.resolve();

  const run = async (job: Job): Promise<void> => {
    try {
      const env: WorkloadEnv = {
        driver: handle!.driver,
        job,
        fanoutDone: handle!.fanoutDone ?? ipcFanoutDone,
        soakMark: (tag, mine) => send({ type: 'soak-mark', tag, mem: mine }),
        cpuMark: (phase) => send({ type: 'cpu-mark', phase }),
      };
      send({ type: 'result', metrics: await runCase(env) });
    } catch (err) {
      send({ type: 'error', message: `${role}: ${errorMessage(err)}` });
    }
  };

  const stop = async (): Promise<void> => {
    await running;
    try {
      await handle?.close();
      sendThenExit({ type: 'stopped', mem: mem() }, 0);
    } catch (err) {
      sendThenExit({ type: 'error', message: `${role} failed to close: ${errorMessage(err)}` }, 1);
    }
  };

  process.on('message', (m: ToWorker) => {
    if (m.type === 'run') running = running.then(() => run(m.job));
    else if (m.type === 'fanout-done') {
      const w = fanoutWaiters.get(m.seq);
      fanoutWaiters.delete(m.seq);
      w?.(BigInt(m.t));
    } else if (m.type === 'stop') void stop();
  });

  connect().then(
    (h) => {
      handle = h;
      send({ type: 'ready', mem: mem() });
    },
    (err) => sendThenExit({ type: 'error', message: `${role} failed to connect: ${errorMessage(err)}` }, 1),
  );
}

/** Records fanout hits of in-process instances; resolves when all `instances` had `seq`. */
export class LocalFanout {
  private hits = new Map<number, { count: number; last: bigint; resolve?: (t: bigint) => void }>();

  constructor(private readonly instances: number) {}

  hit = (seq: number): void => {
    const t = now();
    const h = this.hits.get(seq) ?? { count: 0, last: 0n };
    h.count++;
    h.last = t;
    this.hits.set(seq, h);
    if (h.count === this.instances && h.resolve) {
      this.hits.delete(seq);
      h.resolve(t);
    }
  };

  done = (seq: number): Promise<bigint> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`fanout ${seq}: not every instance had it after ${FANOUT_TIMEOUT_MS} ms`)),
        FANOUT_TIMEOUT_MS,
      );
      const h = this.hits.get(seq) ?? { count: 0, last: 0n };
      this.hits.set(seq, h);
      h.resolve = (t) => {
        clearTimeout(timer);
        resolve(t);
      };
      if (h.count === this.instances) {
        this.hits.delete(seq);
        h.resolve(h.last);
      }
    });
}
