/**
 * Context (api.md "Context", "Precise points"): what the caller sent is what
 * currentContext() returns inside the handler, across await and yield, and calls the
 * handler makes carry it on by themselves.
 */
import 'reflect-metadata';
import { expect } from 'chai';
import { RpcMethod, RpcService, currentContext, start, type App, type RpcProxy } from '../../index';
import { newId } from '../../lib/protocol/envelope';
import { forEachTransport, uniqueName } from '../support/transports';
import { RawPeer, cleanTopic, delay, envelope, rejectionOf, sniff } from './helpers';

type Ctx = Record<string, unknown>;
const REQUEST_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

forEachTransport('contract: context', (t) => {
  const frontTopic = uniqueName('ctx-front');
  const backTopic = uniqueName('ctx-back');
  const host = 'ctx-host';
  const seenByBack: Ctx[] = [];
  const outside: Array<Ctx | undefined> = [];

  @RpcService(backTopic)
  class Back {
    @RpcMethod()
    echo(): Ctx | undefined {
      return currentContext();
    }

    @RpcMethod()
    record(): void {
      seenByBack.push({ ...currentContext() });
    }
  }

  @RpcService(frontTopic)
  class Front {
    back?: RpcProxy<Back>;

    @RpcMethod()
    echo(): Ctx | undefined {
      return currentContext();
    }

    @RpcMethod()
    async afterAwaits(ms: number): Promise<unknown[]> {
      const seen: unknown[] = [currentContext()?.user];
      await delay(ms);
      seen.push(currentContext()?.user);
      await Promise.resolve();
      seen.push(currentContext()?.user);
      await new Promise((r) => setImmediate(r));
      seen.push(currentContext()?.user);
      return seen;
    }

    @RpcMethod()
    async *generator(n: number, ms: number): AsyncGenerator<unknown> {
      for (let i = 0; i < n; i++) {
        await delay(ms);
        yield currentContext()?.user;
      }
    }

    @RpcMethod()
    async relay(): Promise<{ front: Ctx; back: Ctx }> {
      const back = (await this.back!.echo()) as Ctx;
      return { front: currentContext()!, back };
    }

    @RpcMethod()
    async relayAfterAwait(): Promise<Ctx> {
      await delay(10);
      await Promise.resolve();
      return (await this.back!.echo()) as Ctx;
    }

    @RpcMethod()
    async relayWithExtra(): Promise<Ctx> {
      return (await this.back!.$with({ context: { hop: 2, user: 'override' } }).echo()) as Ctx;
    }

    @RpcMethod()
    async relayCast(): Promise<void> {
      await this.back!.$cast.record();
    }

    @RpcMethod()
    async relayFunctional(): Promise<Ctx> {
      return (await app.client.call(backTopic, { method: 'echo' }, { timeout: 1500 })) as Ctx;
    }

    @RpcMethod()
    async *relayFromGenerator(): AsyncGenerator<unknown> {
      yield ((await this.back!.echo()) as Ctx).user;
      await delay(5);
      yield ((await this.back!.echo()) as Ctx).user;
    }

    @RpcMethod()
    async poisonThenRelay(): Promise<string> {
      // A handler that puts what JSON cannot carry into its own context, then calls on.
      currentContext()!.callback = () => 'not data';
      try {
        await this.back!.echo();
        return 'sent';
      } catch (err) {
        return `refused: ${(err as Error).message}`;
      }
    }

    @RpcMethod()
    leakCheck(): string {
      // Work scheduled by a handler still runs in the handler's context...
      setTimeout(() => outside.push(currentContext()), 5);
      return 'ok';
    }
  }

  let app: App;
  let front: RpcProxy<Front>;
  let peer: RawPeer;
  const frontInstance = new Front();

  before(async () => {
    app = await start({ url: t.url, host, services: [frontInstance, Back] });
    frontInstance.back = app.client.proxy(Back, { timeout: 1500 });
    front = app.client.proxy(Front, { timeout: 1500 });
    peer = await RawPeer.open(t);
  });
  after(async () => {
    await peer?.close();
    await app?.stop();
    await cleanTopic(t, frontTopic, [host]);
    await cleanTopic(t, backTopic, [host]);
  });

  describe('currentContext() inside a handler', () => {
    it('returns what the caller sent with $with({ context })', async () => {
      const ctx = (await front.$with({ context: { user: 'alice', roles: ['admin'], tenant: { id: 7 } } }).echo()) as Ctx;
      expect(ctx).to.include({ user: 'alice' });
      expect(ctx.roles).to.deep.equal(['admin']);
      expect(ctx.tenant).to.deep.equal({ id: 7 });
    });

    it('returns what the caller sent with opts.context on the functional API', async () => {
      const ctx = (await app.client.call(frontTopic, { method: 'echo' }, { context: { user: 'bob' }, timeout: 1500 })) as Ctx;
      expect(ctx.user).to.equal('bob');
    });

    it('has a generated request_id when the caller sent none, a new one per request', async () => {
      const a = (await front.echo()) as Ctx;
      const b = (await front.$with({ context: { user: 'x' } }).echo()) as Ctx;
      expect(a.request_id).to.match(REQUEST_ID);
      expect(b.request_id).to.match(REQUEST_ID);
      expect(a.request_id).to.not.equal(b.request_id);
    });

    it('keeps a request_id the caller sent', async () => {
      const ctx = (await front.$with({ context: { request_id: 'req-mine' } }).echo()) as Ctx;
      expect(ctx.request_id).to.equal('req-mine');
    });

    it('has a request_id even for a message that carried no context at all (an oslo or hand-made peer)', async () => {
      const reply = await peer.call(frontTopic, (msgId, replyQ) => envelope(JSON.stringify({ method: 'echo', args: {}, _msg_id: msgId, _reply_q: replyQ, _unique_id: newId() })));
      expect(reply.failure).to.equal(null);
      expect((reply.result as Ctx).request_id).to.match(REQUEST_ID);
    });

    it('is flattened into _context_* keys on the wire', async () => {
      const topic = uniqueName('ctx-wire');
      const wire = await sniff(t, topic);
      try {
        await app.client.cast(topic, { method: 'm' }, { context: { user: 'carol', n: 1 } });
        await wire.next();
        const body = JSON.parse(JSON.parse(wire.raw[0].toString())['oslo.message']);
        expect(body._context_user).to.equal('carol');
        expect(body._context_n).to.equal(1);
        expect(body._context_request_id).to.match(REQUEST_ID);
      } finally {
        await wire.close();
        await cleanTopic(t, topic, ['sniffer']);
      }
    });

    it('a Date in the context is sent as its ISO string', async () => {
      const ctx = (await front.$with({ context: { at: new Date('2024-01-01T00:00:00Z') } }).echo()) as Ctx;
      expect(ctx.at).to.equal('2024-01-01T00:00:00.000Z');
    });
  });

  describe('across await and yield', () => {
    it('stays the caller\'s context across await, with concurrent requests interleaving', async () => {
      const users = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'];
      const results = await Promise.all(users.map((u, i) => front.$with({ context: { user: u } }).afterAwaits(5 + ((i * 7) % 20))));
      results.forEach((seen, i) => expect(seen, users[i]).to.deep.equal([users[i], users[i], users[i], users[i]]));
    });

    it('stays the caller\'s context across yield in a $multicall, with two streams interleaving', async () => {
      const read = async (user: string, ms: number) => {
        const out: unknown[] = [];
        for await (const u of front.$with({ context: { user } }).$multicall.generator(4, ms)) out.push(u);
        return out;
      };
      const [a, b] = await Promise.all([read('ann', 7), read('ben', 11)]);
      expect(a).to.deep.equal(['ann', 'ann', 'ann', 'ann']);
      expect(b).to.deep.equal(['ben', 'ben', 'ben', 'ben']);
    });

    it('stays the caller\'s context in a generator called plainly', async () => {
      const [a, b] = await Promise.all([front.$with({ context: { user: 'cy' } }).generator(3, 5), front.$with({ context: { user: 'di' } }).generator(3, 3)]);
      expect(a).to.deep.equal(['cy', 'cy', 'cy']);
      expect(b).to.deep.equal(['di', 'di', 'di']);
    });

    it('is undefined outside a handler: in the test, and after awaiting a call', async () => {
      expect(currentContext()).to.equal(undefined);
      await front.$with({ context: { user: 'eve' } }).echo();
      expect(currentContext()).to.equal(undefined);
      await front.$with({ context: { user: 'eve' } }).afterAwaits(1);
      expect(currentContext()).to.equal(undefined);
    });
  });

  describe('propagation', () => {
    it('a handler that calls another service passes its context on without doing anything', async () => {
      const { front: f, back: b } = await front.$with({ context: { user: 'frank', tenant: 't1' } }).relay();
      expect(b.user).to.equal('frank');
      expect(b.tenant).to.equal('t1');
      expect(b.request_id).to.equal(f.request_id);
      expect(b.request_id).to.match(REQUEST_ID);
    });

    it('still passes it on after awaits, and from inside a generator', async () => {
      expect(((await front.$with({ context: { user: 'gil' } }).relayAfterAwait()) as Ctx).user).to.equal('gil');
      const users: unknown[] = [];
      for await (const u of front.$with({ context: { user: 'hal' } }).$multicall.relayFromGenerator()) users.push(u);
      expect(users).to.deep.equal(['hal', 'hal']);
    });

    it('concurrent requests each pass on their own context', async () => {
      const users = ['p0', 'p1', 'p2', 'p3', 'p4'];
      const results = await Promise.all(users.map((u) => front.$with({ context: { user: u, request_id: `req-${u}` } }).relay()));
      results.forEach((r, i) => {
        expect(r.back.user).to.equal(users[i]);
        expect(r.back.request_id).to.equal(`req-${users[i]}`);
      });
    });

    it('explicit context on the inner call is merged over the inherited one', async () => {
      const ctx = await front.$with({ context: { user: 'ivy', keep: true, request_id: 'req-ivy' } }).relayWithExtra();
      expect(ctx).to.include({ user: 'override', hop: 2, keep: true, request_id: 'req-ivy' });
    });

    it('casts made from a handler carry the context too', async () => {
      seenByBack.length = 0;
      await front.$with({ context: { user: 'jo', request_id: 'req-jo' } }).relayCast();
      for (let i = 0; i < 50 && !seenByBack.length; i++) await delay(10);
      expect(seenByBack).to.have.length(1);
      expect(seenByBack[0]).to.include({ user: 'jo', request_id: 'req-jo' });
    });

    it('the functional API called from a handler carries it as well', async () => {
      expect(((await front.$with({ context: { user: 'kim' } }).relayFunctional()) as Ctx).user).to.equal('kim');
    });

    it('does not leak into the caller: a call made outside any handler gets a fresh context', async () => {
      await front.$with({ context: { user: 'leaky', request_id: 'req-leaky' } }).relay();
      const ctx = (await app.client.proxy(Back, { timeout: 1500 }).echo()) as Ctx;
      expect(ctx.user).to.equal(undefined);
      expect(ctx.request_id).to.not.equal('req-leaky');
    });
  });

  describe("values JSON cannot carry are refused on the caller's side", () => {
    const bad: Array<[string, unknown, RegExp]> = [
      ['a function', () => 1, /context\.v.*function/],
      ['a bigint', BigInt(1), /context\.v.*bigint/],
      ['undefined', undefined, /context\.v.*undefined/],
      ['NaN', NaN, /context\.v.*NaN/],
      ['Infinity', Infinity, /context\.v.*Infinity/],
      ['a symbol', Symbol('s'), /context\.v.*symbol/],
      ['a Map', new Map([['a', 1]]), /context\.v.*Map/],
      ['a nested function', { deep: [{ f: () => 1 }] }, /context\.v\.deep\[0\]\.f/],
    ];
    for (const [what, value, message] of bad) {
      it(`${what}: a clear TypeError naming the path, before anything is sent`, async () => {
        // A topic nobody serves: refusing before sending means no UndeliverableError.
        const err = await rejectionOf(app.client.call(uniqueName('never'), { method: 'm' }, { context: { v: value } }));
        expect(err, err.message).to.be.instanceOf(TypeError);
        expect(err.message).to.match(message);
      });
    }

    it('a circular context is refused too', async () => {
      const v: Record<string, unknown> = {};
      v.self = v;
      const err = await rejectionOf(front.$with({ context: { v } }).echo());
      expect(err).to.be.instanceOf(TypeError);
      expect(err.message).to.match(/circular/);
    });

    it('casts and proxies refuse the same way', async () => {
      expect(await rejectionOf(front.$with({ context: { f: () => 1 } }).$cast.echo())).to.be.instanceOf(TypeError);
      expect(await rejectionOf(front.$with({ context: { f: () => 1 } }).echo())).to.be.instanceOf(TypeError);
    });

    it('a context that is not an object is refused', async () => {
      for (const c of ['str', 5, [1]]) {
        const err = await rejectionOf(app.client.call(frontTopic, { method: 'echo' }, { context: c as unknown as Ctx }));
        expect(err).to.be.instanceOf(TypeError);
      }
    });

    it('a handler that puts such a value into its own context is refused when it calls on', async () => {
      const r = await front.$with({ context: { user: 'lee' } }).poisonThenRelay();
      expect(r).to.match(/^refused: .*callback/);
    });
  });

  describe('timers a handler schedules', () => {
    it('see the handler\'s context, and the caller still sees none', async () => {
      outside.length = 0;
      await front.$with({ context: { user: 'mo' } }).leakCheck();
      for (let i = 0; i < 30 && !outside.length; i++) await delay(10);
      expect(outside).to.have.length(1);
      expect(outside[0]?.user).to.equal('mo');
      expect(currentContext()).to.equal(undefined);
    });
  });
});
