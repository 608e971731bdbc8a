/**
 * The four verbs and three consumer patterns of the rpc API, on every transport:
 * round robin on the shared topic queue, `$to` on the per-host queue, fanout to all,
 * streamed multicall, and bounded waits.
 */
import { expect } from 'chai';
import { type App, RpcMethod, RpcService, RpcTimeoutError, NoSuchMethodError, UndeliverableError, start, createClient } from '../../index';
import type { RpcClient } from '../../lib/client/client';
import { deleteTopology, forEachTransport, sleep, topicQueues, uniqueName } from '../support/transports';

forEachTransport('verbs', (t) => {
  const topic = uniqueName('verbs');
  const hosts = ['h1', 'h2', 'h3'];
  const hits: Record<string, string[]> = {};
  let gate: Promise<void> = Promise.resolve();
  let generatorFinished = false;
  let hang: Promise<void> = Promise.resolve();

  @RpcService(topic)
  class Worker {
    constructor(readonly host = 'none') {}

    @RpcMethod()
    whoami(): string {
      return this.host;
    }

    @RpcMethod()
    record(tag: string): void {
      (hits[tag] ??= []).push(this.host);
    }

    @RpcMethod()
    async *count(n: number, failAt = -1): AsyncGenerator<number> {
      generatorFinished = false;
      for (let i = 0; i < n; i++) {
        if (i === failAt) throw new Error(`failed at ${i}`);
        yield i;
        await gate;
      }
      generatorFinished = true;
    }

    @RpcMethod()
    async sleep(ms: number): Promise<number> {
      await sleep(ms);
      return ms;
    }

    @RpcMethod()
    async hang(): Promise<string> {
      await hang;
      return 'late';
    }

    @RpcMethod()
    explode(): void {
      throw new Error('kaboom');
    }

    notRemote(): string {
      return 'local';
    }
  }

  let apps: App[] = [];
  let client: RpcClient;

  before(async () => {
    apps = await Promise.all(hosts.map((host) => start({ url: t.url, host, services: [new Worker(host)] })));
    client = await createClient({ url: t.url, timeout: 5000 });
  });

  after(async () => {
    await client?.close();
    await Promise.all(apps.map((a) => a.stop()));
    await deleteTopology(t, { queues: topicQueues(topic, hosts) });
  });

  it('shares the topic queue round robin: 100 calls reach all 3 instances, none more than its share plus a margin', async () => {
    const proxy = client.proxy(Worker);
    const answers = await Promise.all(Array.from({ length: 100 }, () => proxy.whoami()));
    const counts = hosts.map((h) => answers.filter((a) => a === h).length);
    expect(counts.reduce((a, b) => a + b)).to.equal(100);
    for (const c of counts) {
      expect(c).to.be.greaterThan(0);
      expect(c).to.be.at.most(34 + 10);
    }
  });

  it('sends $to(host) calls to that host only', async () => {
    const proxy = client.proxy(Worker);
    for (const h of hosts) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => proxy.$to(h).whoami()));
      expect(new Set(answers)).to.deep.equal(new Set([h]));
    }
  });

  it('delivers a fanout cast to each of the 3 instances exactly once', async () => {
    const tag = uniqueName('fan');
    await client.proxy(Worker).$fanout.record(tag);
    await waitFor(() => (hits[tag]?.length ?? 0) >= 3);
    await sleep(100); // a duplicate would arrive in this window
    expect([...hits[tag]].sort()).to.deep.equal(hosts);
  });

  it('delivers a cast to exactly one instance, and resolves before the handler runs to completion', async () => {
    const tag = uniqueName('cast');
    await client.proxy(Worker).$cast.record(tag);
    await waitFor(() => (hits[tag]?.length ?? 0) >= 1);
    await sleep(100);
    expect(hits[tag]).to.have.length(1);
  });

  it('streams a generator to $multicall: the first item arrives before the generator ends', async () => {
    let release!: () => void;
    gate = new Promise((r) => (release = r));
    const it = client.proxy(Worker).$multicall.count(3)[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first).to.deep.equal({ value: 0, done: false });
    expect(generatorFinished).to.equal(false);
    release();
    const rest: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(rest).to.deep.equal([1, 2]);
    expect(generatorFinished).to.equal(true);
    gate = Promise.resolve();
  });

  it('delivers the items before an error thrown mid-stream, then the error', async () => {
    const got: number[] = [];
    let caught: unknown;
    try {
      for await (const v of client.proxy(Worker).$multicall.count(5, 2)) got.push(v);
    } catch (err) {
      caught = err;
    }
    expect(got).to.deep.equal([0, 1]);
    expect(caught).to.be.instanceOf(Error);
    expect((caught as Error).message).to.equal('failed at 2');
  });

  it('collects a generator into an array when it is called plainly', async () => {
    expect(await client.proxy(Worker).count(4)).to.deep.equal([0, 1, 2, 3]);
  });

  it('offers the functional API: call, cast, fanoutCast, multicall', async () => {
    expect(await client.call(topic, { method: 'whoami' }, { server: 'h2' })).to.equal('h2');
    const tag = uniqueName('fn');
    await client.cast(topic, { method: 'record', args: { tag } }, { server: 'h3' });
    await client.fanoutCast(topic, { method: 'record', args: { tag } });
    await waitFor(() => (hits[tag]?.length ?? 0) >= 4);
    expect([...hits[tag]].sort()).to.deep.equal(['h1', 'h2', 'h3', 'h3']);
    const items: unknown[] = [];
    for await (const v of client.multicall(topic, { method: 'count', args: { n: 2 } })) items.push(v);
    expect(items).to.deep.equal([0, 1]);
  });

  it('times out with RpcTimeoutError and leaves no timer and no pending entry behind', async () => {
    const pending = (client as unknown as { pending: Map<string, unknown> }).pending;
    let release!: () => void;
    hang = new Promise((r) => (release = r)); // the handler waits without a timer of its own
    await sleep(5); // mocha arms its own test timer lazily, after the first timer fires
    const timersBefore = countTimeouts();
    const err = await client.proxy(Worker).$with({ timeout: 200 }).hang().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(RpcTimeoutError);
    expect((err as Error).message).to.match(/within 200 ms/);
    expect(pending.size).to.equal(0);
    await new Promise((r) => setImmediate(r)); // let Node finish the timer list that fired
    expect(countTimeouts()).to.be.at.most(timersBefore);
    release();
    await sleep(100); // the late reply arrives and is dropped without effect
    expect(pending.size).to.equal(0);
  });

  it('bounds each multicall item by the timeout', async () => {
    let release!: () => void;
    gate = new Promise((r) => (release = r));
    const got: number[] = [];
    let caught: unknown;
    try {
      for await (const v of client.proxy(Worker).$with({ timeout: 300 }).$multicall.count(3)) got.push(v);
    } catch (err) {
      caught = err;
    }
    release();
    gate = Promise.resolve();
    expect(got).to.deep.equal([0]);
    expect(caught).to.be.instanceOf(RpcTimeoutError);
  });

  it('returns a handler exception to the caller instead of hanging', async () => {
    const err = await client.proxy(Worker).explode().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.equal('kaboom');
    expect(await client.proxy(Worker).whoami()).to.be.oneOf(hosts);
  });

  it('rejects an unknown method with NoSuchMethodError from the server', async () => {
    const err = await client.call(topic, { method: 'nope' }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(NoSuchMethodError);
  });

  it('rejects an undecorated method locally, without sending anything', async () => {
    const err = await client.proxy(Worker).notRemote().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(NoSuchMethodError);
    expect((err as Error).message).to.match(/not an @RpcMethod/);
  });

  it('fails calls, casts and fanouts to a topic nobody serves with UndeliverableError, at once', async () => {
    const nobody = uniqueName('nobody');
    const t0 = Date.now();
    for (const attempt of [
      () => client.call(nobody, { method: 'x' }, { timeout: 10_000 }),
      () => client.cast(nobody, { method: 'x' }),
      () => client.fanoutCast(nobody, { method: 'x' }),
      () => client.call(topic, { method: 'whoami' }, { server: 'no-such-host', timeout: 10_000 }),
    ]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(err).to.be.instanceOf(UndeliverableError);
    }
    expect(Date.now() - t0).to.be.below(5000);
    await deleteTopology(t, { exchanges: [`${nobody}_fanout`] });
  });
});

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

function countTimeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}
