/**
 * Interoperability with the real oslo.messaging (Debian's python3-oslo.messaging, run
 * with /usr/bin/python3), both ways: a Python RPCClient calling a Courier service, and
 * Courier proxies calling a Python RPCServer. The Python side is oslo_client.py and
 * oslo_server.py beside this file.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { type App, RemoteError, RpcError, RpcMethod, RpcService, RpcTimeoutError, createClient, currentContext, start } from '../../index';
import type { RpcClient } from '../../lib/client/client';
import { spawnReady, stopProcess } from '../support/processes';
import { AMQP_URL, deleteTopology, sleep, topicQueues, uniqueName } from '../support/transports';

const PY = '/usr/bin/python3';
const HERE = join(__dirname, '..', '..', '..', 'spec', 'interop');
// oslo reads amqp:// as its AMQP 1.0 driver; RabbitMQ's is rabbit://.
const OSLO_URL = AMQP_URL.replace(/^amqp:/, 'rabbit:');

interface PyOutcome {
  ok: boolean;
  result?: unknown;
  error_class?: string;
  exc_type?: string | null;
  value?: string;
}

async function pyClient(action: 'call' | 'cast' | 'fanout', topic: string, method: string, kwargs: object = {}, ...flags: string[]): Promise<PyOutcome> {
  const { stdout } = await promisify(execFile)(PY, [join(HERE, 'oslo_client.py'), action, method, JSON.stringify(kwargs), '--topic', topic, '--url', OSLO_URL, ...flags], {
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as PyOutcome;
}

function pyServer(topic: string, server: string): Promise<ChildProcess> {
  // A call that timed out leaves a late reply oslo would retry for 60 s, stalling its stop.
  const url = `${OSLO_URL}${OSLO_URL.includes('?') ? '&' : '?'}kombu_missing_consumer_retry_timeout=1`;
  return spawnReady('oslo server', PY, [join(HERE, 'oslo_server.py'), '--topic', topic, '--server', server, '--url', url]);
}

const stop = (child: ChildProcess) => stopProcess(child);

describe('interop: a Python oslo.messaging RPCClient calls a Courier service', function () {
  this.timeout(60_000);
  const topic = uniqueName('py2ts');
  const hosts = ['ts1', 'ts2'];
  const notes: Record<string, string[]> = { ts1: [], ts2: [] };

  @RpcError()
  class InteropQuotaExceeded extends Error {
    constructor(message: string, readonly limit: number) {
      super(message);
      this.name = 'InteropQuotaExceeded';
    }
  }

  @RpcService(topic, { version: '1.3' })
  class Interop {
    constructor(readonly host = '') {}
    @RpcMethod() add(a: number, b: number): number {
      return a + b;
    }
    @RpcMethod() note(value: string): void {
      notes[this.host].push(value);
    }
    @RpcMethod() whoami(): string {
      return this.host;
    }
    @RpcMethod() ctx(): unknown {
      return currentContext();
    }
    @RpcMethod() fail(message: string): never {
      throw new InteropQuotaExceeded(message, 3);
    }
    @RpcMethod() async *count(n: number): AsyncGenerator<number> {
      for (let i = 0; i < n; i++) yield i;
    }
    @RpcMethod() async slow(seconds: number): Promise<number> {
      await sleep(seconds * 1000);
      return seconds;
    }
  }

  let apps: App[] = [];
  before(async () => {
    apps = await Promise.all(hosts.map((host) => start({ url: AMQP_URL, host, services: [new Interop(host)] })));
  });
  after(async () => {
    await Promise.all(apps.map((a) => a.stop()));
    await deleteTopology({ name: 'amqp', url: AMQP_URL }, { queues: topicQueues(topic, hosts) });
  });

  it('call with keyword arguments', async () => {
    expect(await pyClient('call', topic, 'add', { a: 2, b: 3 })).to.include({ ok: true, result: 5 });
  });

  it('call to one server', async () => {
    for (const h of hosts) expect((await pyClient('call', topic, 'whoami', {}, '--server', h)).result).to.equal(h);
  });

  it('cast and fanout cast', async () => {
    const cast = uniqueName('c');
    const fan = uniqueName('f');
    expect((await pyClient('cast', topic, 'note', { value: cast })).ok).to.equal(true);
    expect((await pyClient('fanout', topic, 'note', { value: fan })).ok).to.equal(true);
    await sleep(300);
    expect([...notes.ts1, ...notes.ts2].filter((v) => v === cast)).to.have.length(1);
    expect(notes.ts1).to.include(fan);
    expect(notes.ts2).to.include(fan);
  });

  it('a remote exception arrives as RemoteError naming our class and message', async () => {
    const out = await pyClient('call', topic, 'fail', { message: 'too many vcpus' });
    expect(out).to.include({ ok: false, error_class: 'RemoteError', exc_type: 'InteropQuotaExceeded' });
    expect(out.value).to.include('too many vcpus');
  });

  it('an unknown method arrives as oslo NoSuchMethod', async () => {
    const out = await pyClient('call', topic, 'nope');
    expect(out).to.include({ ok: false, error_class: 'RemoteError', exc_type: 'NoSuchMethod' });
    expect(out.value).to.include('Endpoint does not support RPC method nope');
  });

  it('the context makes the round trip', async () => {
    const out = await pyClient('call', topic, 'ctx', {}, '--context', JSON.stringify({ user_id: 'u1', project_id: 'p1', request_id: 'req-42' }));
    expect(out.ok).to.equal(true);
    expect(out.result).to.include({ user_id: 'u1', project_id: 'p1', request_id: 'req-42' });
  });

  it('a generator method comes back to Python as the collected list', async () => {
    expect((await pyClient('call', topic, 'count', { n: 4 })).result).to.deep.equal([0, 1, 2, 3]);
  });

  it('serves the call monitor: heartbeats keep a Python call with call_monitor_timeout alive', async () => {
    const out = await pyClient('call', topic, 'slow', { seconds: 3 }, '--monitor', '2', '--timeout', '20');
    expect(out).to.include({ ok: true, result: 3 });
  });
});

describe('interop: Courier calls a Python oslo.messaging RPCServer', function () {
  this.timeout(90_000);
  const topic = uniqueName('ts2py');
  const servers = ['py1', 'py2'];
  let children: ChildProcess[] = [];
  let client: RpcClient;

  before(async () => {
    children = await Promise.all(servers.map((s) => pyServer(topic, s)));
    client = await createClient({ url: AMQP_URL, timeout: 10_000 });
  });
  after(async () => {
    await client?.close();
    await Promise.all(children.map(stop));
    await deleteTopology({ name: 'amqp', url: AMQP_URL }, { queues: topicQueues(topic, servers) });
  });

  const opts = { version: '1.3' };

  it('call', async () => {
    expect(await client.call(topic, { method: 'add', args: { a: 2, b: 3 } }, opts)).to.equal(5);
  });

  it('$to(server) through the functional API', async () => {
    for (const s of servers) expect(await client.call(topic, { method: 'whoami' }, { ...opts, server: s })).to.equal(s);
  });

  it('cast and fanout cast', async () => {
    const cast = uniqueName('c');
    const fan = uniqueName('f');
    await client.cast(topic, { method: 'note', args: { value: cast } }, opts);
    await client.fanoutCast(topic, { method: 'note', args: { value: fan } }, opts);
    await sleep(500);
    const lists = await Promise.all(servers.map((s) => client.call<string[]>(topic, { method: 'notes' }, { ...opts, server: s })));
    expect(lists.flat().filter((v) => v === cast)).to.have.length(1);
    for (const l of lists) expect(l).to.include(fan);
  });

  it('a Python exception arrives as RemoteError with the Python class name', async () => {
    const err = await client.call(topic, { method: 'fail', args: { message: 'boom' } }, opts).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(RemoteError);
    expect((err as RemoteError).remoteName).to.equal('ValueError');
    expect((err as RemoteError).message).to.equal('boom');
    expect((err as RemoteError).remoteStack).to.include('Traceback');
  });

  it('a timeout', async () => {
    const err = await client.call(topic, { method: 'sleep', args: { seconds: 2 } }, { ...opts, timeout: 500 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(RpcTimeoutError);
  });

  it('asks an oslo server for call-monitor heartbeats, which keep a long call alive', async () => {
    expect(await client.call(topic, { method: 'sleep', args: { seconds: 3 } }, { ...opts, heartbeat: 2, timeout: 20_000 })).to.equal(3);
  });

  it('the context reaches the Python endpoint', async () => {
    const ctx = await client.call<Record<string, unknown>>(topic, { method: 'ctx' }, { ...opts, context: { user_id: 'u1' } });
    expect(ctx).to.include({ user_id: 'u1' });
    expect(ctx.request_id).to.match(/^req-/);
  });

  it('a multicall to a plain Python method yields its one result', async () => {
    const items: unknown[] = [];
    for await (const v of client.multicall(topic, { method: 'add', args: { a: 1, b: 1 } }, opts)) items.push(v);
    expect(items).to.deep.equal([2]);
  });
});
