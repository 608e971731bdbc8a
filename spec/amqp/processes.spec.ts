/**
 * RabbitMQ with server instances in separate OS processes: what `memory://` cannot
 * prove. Every name is unique to the run and deleted afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { createClient, RpcTimeoutError, UndeliverableError } from '../../index';
import type { RpcClient } from '../../lib/client/client';
import { spawnReady, stopProcess } from '../support/processes';
import { AMQP_URL, deleteTopology, sleep, topicQueues, uniqueName } from '../support/transports';

const WORKER = join(__dirname, 'fixtures', 'worker.js');

function spawnWorker(topic: string, host: string, url = AMQP_URL): Promise<ChildProcess> {
  return spawnReady(`worker ${host}`, process.execPath, [WORKER], { ...process.env, WORKER_URL: url, WORKER_TOPIC: topic, WORKER_HOST: host });
}

const stopWorker = (child: ChildProcess) => stopProcess(child, 10_000);

describe('RabbitMQ across processes', function () {
  this.timeout(60_000);
  const topic = uniqueName('procs');
  const hosts = ['p1', 'p2', 'p3'];
  let workers: ChildProcess[] = [];
  let client: RpcClient;

  before(async () => {
    workers = await Promise.all(hosts.map((h) => spawnWorker(topic, h)));
    client = await createClient({ url: AMQP_URL, timeout: 10_000 });
  });

  after(async () => {
    await client?.close();
    await Promise.all(workers.map(stopWorker));
    await deleteTopology({ name: 'amqp', url: AMQP_URL }, { queues: topicQueues(topic, hosts), exchanges: [`${topic}_fanout`] }).catch(() => {});
  });

  it('round robins 150 calls across 3 processes', async () => {
    const answers = await Promise.all(Array.from({ length: 150 }, () => client.call<string>(topic, { method: 'whoami' })));
    for (const h of hosts) {
      const n = answers.filter((a) => a === h).length;
      expect(n, h).to.be.within(30, 70);
    }
  });

  it('routes to one process by host', async () => {
    for (const h of hosts) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => client.call(topic, { method: 'whoami' }, { server: h })));
      expect(new Set(answers)).to.deep.equal(new Set([h]));
    }
  });

  it('fans out to every process exactly once', async () => {
    const tag = uniqueName('tag');
    await client.fanoutCast(topic, { method: 'record', args: { tag } });
    await sleep(300);
    for (const h of hosts) expect(await client.call(topic, { method: 'seen', args: { tag } }, { server: h }), h).to.equal(1);
  });

  it('streams a multicall from another process item by item', async () => {
    const arrivals: Array<{ i: number; at: number; got: number }> = [];
    for await (const item of client.multicall<{ i: number; at: number }>(topic, { method: 'stream', args: { n: 5, delayMs: 50 } })) {
      arrivals.push({ ...item, got: Date.now() });
    }
    expect(arrivals.map((a) => a.i)).to.deep.equal([0, 1, 2, 3, 4]);
    // The first item was in hand long before the last one was produced.
    expect(arrivals[0].got).to.be.below(arrivals[4].at);
  });

  it('times out a call whose handler outlives the timeout', async () => {
    const err = await client.call(topic, { method: 'sleep', args: { ms: 1500 } }, { timeout: 300 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(RpcTimeoutError);
  });

  it('fails a call early when its server dies and the call-monitor heartbeats stop', async () => {
    // Killed, it cannot delete its fanout queue: let the broker expire it 1 s after.
    const victim = await spawnWorker(topic, 'doomed', `${AMQP_URL}${AMQP_URL.includes('?') ? '&' : '?'}rabbit_transient_queues_ttl=1`);
    try {
      const t0 = Date.now();
      const call = client.call(topic, { method: 'sleep', args: { ms: 20_000 } }, { server: 'doomed', heartbeat: 2, timeout: 30_000 }).catch((e: unknown) => e);
      await sleep(2500); // at least one heartbeat has arrived by now (every 1 s)
      victim.kill('SIGKILL');
      const err = await call;
      expect(err).to.be.instanceOf(RpcTimeoutError);
      expect((err as Error).message).to.match(/no heartbeat/);
      expect(Date.now() - t0).to.be.below(8000); // not the 30 s timeout
    } finally {
      await stopWorker(victim);
      await deleteTopology({ name: 'amqp', url: AMQP_URL }, { queues: [`${topic}.doomed`] }).catch(() => {});
    }
  });

  it('fails a call to a host that does not exist with UndeliverableError, at once', async () => {
    const t0 = Date.now();
    const err = await client.call(topic, { method: 'whoami' }, { server: 'p9', timeout: 20_000 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(UndeliverableError);
    expect(Date.now() - t0).to.be.below(2000);
  });
});

describe('the demo of `npm start` on RabbitMQ', function () {
  this.timeout(60_000);

  after(async () => {
    await deleteTopology(
      { name: 'amqp', url: AMQP_URL },
      { queues: ['compute', 'compute.compute-1', 'compute.compute-2', 'scheduler', 'scheduler.scheduler-1'], exchanges: ['compute_fanout', 'scheduler_fanout'] },
    ).catch(() => {});
  });

  it('runs unchanged with RPC_TRANSPORT_URL set', async () => {
    const demo = join(__dirname, '..', '..', 'sample-services', 'demo.js');
    const child = spawn(process.execPath, [demo], { env: { ...process.env, RPC_TRANSPORT_URL: AMQP_URL }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code, out).to.equal(0);
    expect(out).to.match(/whoami\(\) x6 answered by: .*compute-1.*compute-2|whoami\(\) x6 answered by: .*compute-2.*compute-1/);
    expect(out).to.match(/cache refreshed.*\n.*cache refreshed/);
    expect(out).to.match(/console line 3\/3/);
    expect(out).to.match(/timeout +-> RpcTimeoutError/);
    expect(out).to.match(/unknown method +-> NoSuchMethodError/);
    expect(out).to.match(/invalid DTO +-> ValidationError/);
    expect(out).to.match(/registered error +-> QuotaExceeded/);
    expect(out).to.match(/stopped cleanly/);
  });
});
