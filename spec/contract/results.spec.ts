/**
 * Results (api.md "Calling: typed proxies", `returns`): what a method returns leaves the
 * server as plain JSON made by class-transformer's instanceToPlain, so @Exclude keeps a
 * field on the server; `@RpcMethod({ returns })` makes the proxy rebuild the class.
 */
import 'reflect-metadata';
import { expect } from 'chai';
import { Exclude, Expose, Type } from 'class-transformer';
import { IsDate } from 'class-validator';
import { RpcMethod, RpcService, RpcTimeoutError, start, type App, type RpcProxy } from '../../index';
import { newId } from '../../lib/protocol/envelope';
import { forEachTransport, uniqueName } from '../support/transports';
import { RawPeer, cleanTopic, envelope, rejectionOf } from './helpers';

const SECRET = 'hunter2-s3cr3t';

class Disk {
  sizeGb!: number;
  @Exclude() encryptionKey?: string;
  describe(): string {
    return `${this.sizeGb} GB`;
  }
}

class Instance {
  id!: string;
  @Type(() => Date) createdAt!: Date;
  /** No @Type: the design:type that any property decorator records is enough. */
  @IsDate() updatedAt!: Date;
  @Type(() => Disk) disks: Disk[] = [];
  @Exclude() adminPass?: string;
  @Expose() get label(): string {
    return `instance ${this.id}`;
  }
  describe(): string {
    return `${this.id} with ${this.disks.length} disk(s)`;
  }
}

/** Only what is exposed leaves: the class-level @Exclude strategy. */
@Exclude()
class Account {
  @Expose() user!: string;
  token?: string;
  password?: string;
}

function makeInstance(id: string): Instance {
  return Object.assign(new Instance(), {
    id,
    createdAt: new Date('2024-01-02T03:04:05.006Z'),
    updatedAt: new Date('2024-06-07T08:09:10.011Z'),
    disks: [Object.assign(new Disk(), { sizeGb: 10, encryptionKey: SECRET }), Object.assign(new Disk(), { sizeGb: 20, encryptionKey: SECRET })],
    adminPass: SECRET,
  });
}

forEachTransport('contract: results', (t) => {
  const topic = uniqueName('results');
  const host = 'results-host';

  @RpcService(topic)
  class ResultService {
    @RpcMethod({ returns: Instance })
    get(id: string): Instance {
      return makeInstance(id);
    }

    @RpcMethod()
    getPlain(id: string): Instance {
      return makeInstance(id);
    }

    @RpcMethod({ returns: Instance })
    async list(n: number): Promise<Instance[]> {
      return Array.from({ length: n }, (_, i) => makeInstance(`i-${i}`));
    }

    @RpcMethod({ returns: Instance })
    async *stream(n: number): AsyncGenerator<Instance> {
      for (let i = 0; i < n; i++) yield makeInstance(`s-${i}`);
    }

    @RpcMethod()
    async *streamPlain(n: number): AsyncGenerator<Instance> {
      for (let i = 0; i < n; i++) yield makeInstance(`p-${i}`);
    }

    @RpcMethod()
    account(): Account {
      return Object.assign(new Account(), { user: 'ann', token: SECRET, password: SECRET });
    }

    @RpcMethod()
    wrapped(): { instance: Instance; accounts: Account[] } {
      return { instance: makeInstance('w'), accounts: [Object.assign(new Account(), { user: 'bob', token: SECRET })] };
    }

    @RpcMethod()
    date(): Date {
      return new Date('2025-05-05T05:05:05.005Z');
    }

    @RpcMethod()
    primitive(kind: string): unknown {
      return ({ number: 42, string: 'text', boolean: false, null: null, array: [1, 'a', { b: true }] } as Record<string, unknown>)[kind];
    }

    @RpcMethod()
    nothing(): void {}

    @RpcMethod({ returns: Instance })
    nullInstance(): Instance | null {
      return null;
    }

    @RpcMethod()
    unserialisable(): unknown {
      return { n: BigInt(10) };
    }

    @RpcMethod()
    circular(): unknown {
      const o: Record<string, unknown> = { a: 1 };
      o.self = o;
      return o;
    }
  }

  let app: App;
  let peer: RawPeer;
  let svc: RpcProxy<ResultService>;

  before(async () => {
    app = await start({ url: t.url, host, services: [ResultService] });
    peer = await RawPeer.open(t);
    svc = app.client.proxy(ResultService, { timeout: 2000 });
  });
  after(async () => {
    await peer?.close();
    await app?.stop();
    await cleanTopic(t, topic, [host]);
  });

  /** The reply exactly as the server put it on the wire. */
  async function rawResult(method: string, args: Record<string, unknown> = {}): Promise<{ result: unknown; text: string }> {
    const reply = await peer.call(topic, (msgId, replyQ) => envelope(JSON.stringify({ method, args, _msg_id: msgId, _reply_q: replyQ, _unique_id: newId() })));
    expect(reply.failure).to.equal(null);
    return { result: reply.result, text: JSON.stringify(reply.result) };
  }

  describe('on the wire', () => {
    it('an @Exclude field never leaves the server, nor does an excluded field of a nested object', async () => {
      const { result, text } = await rawResult('getPlain', { id: 'i-1' });
      expect(text).to.not.include(SECRET);
      expect(result).to.not.have.property('adminPass');
      const disks = (result as { disks: object[] }).disks;
      expect(disks).to.have.length(2);
      for (const d of disks) expect(d).to.deep.equal({ sizeGb: d === disks[0] ? 10 : 20 });
    });

    it('an @Expose getter is sent as a plain property; Dates become ISO strings', async () => {
      const { result } = await rawResult('getPlain', { id: 'i-2' });
      expect(result).to.include({ id: 'i-2', label: 'instance i-2', createdAt: '2024-01-02T03:04:05.006Z', updatedAt: '2024-06-07T08:09:10.011Z' });
    });

    it('a class-level @Exclude sends only the @Expose fields', async () => {
      const { result, text } = await rawResult('account');
      expect(result).to.deep.equal({ user: 'ann' });
      expect(text).to.not.include(SECRET);
    });

    it('instances inside arrays and plain objects are converted too', async () => {
      const { result, text } = await rawResult('wrapped');
      expect(text).to.not.include(SECRET);
      expect((result as { accounts: unknown[] }).accounts).to.deep.equal([{ user: 'bob' }]);
      expect((result as { instance: object }).instance).to.not.have.property('adminPass');
    });

    it('a generator called plainly sends the array of its items, each converted', async () => {
      const { result, text } = await rawResult('streamPlain', { n: 2 });
      expect(text).to.not.include(SECRET);
      expect(result).to.be.an('array').with.length(2);
      expect((result as Array<{ id: string }>).map((r) => r.id)).to.deep.equal(['p-0', 'p-1']);
    });
  });

  describe('without `returns`', () => {
    it('the caller gets plain JSON: no class, Dates as strings, no secrets', async () => {
      const r = (await svc.getPlain('i-3')) as unknown as Record<string, unknown>;
      expect(Object.getPrototypeOf(r)).to.equal(Object.prototype);
      expect(r.createdAt).to.equal('2024-01-02T03:04:05.006Z');
      expect(r).to.not.have.property('adminPass');
      expect(JSON.stringify(r)).to.not.include(SECRET);
    });

    it('each item streamed by $multicall is converted on the server, secrets excluded', async () => {
      const items: unknown[] = [];
      for await (const item of svc.$multicall.streamPlain(3)) items.push(item);
      expect(items).to.have.length(3);
      expect(JSON.stringify(items)).to.not.include(SECRET);
      expect(items.every((i) => Object.getPrototypeOf(i) === Object.prototype)).to.equal(true);
    });

    it('a Date result arrives as its ISO string', async () => {
      expect(await svc.date()).to.equal('2025-05-05T05:05:05.005Z');
    });

    it('primitives, null and arrays arrive unchanged; a void method resolves to nothing', async () => {
      expect(await svc.primitive('number')).to.equal(42);
      expect(await svc.primitive('string')).to.equal('text');
      expect(await svc.primitive('boolean')).to.equal(false);
      expect(await svc.primitive('null')).to.equal(null);
      expect(await svc.primitive('array')).to.deep.equal([1, 'a', { b: true }]);
      expect(await svc.nothing()).to.equal(null);
    });
  });

  describe('with `returns`', () => {
    it('the proxy rebuilds the class: methods work, Dates are Dates, nested classes too', async () => {
      const r = await svc.get('i-4');
      expect(r).to.be.instanceOf(Instance);
      expect(r.describe()).to.equal('i-4 with 2 disk(s)');
      expect(r.createdAt).to.be.instanceOf(Date);
      expect(r.createdAt.toISOString()).to.equal('2024-01-02T03:04:05.006Z');
      expect(r.updatedAt, 'a Date field known only by design:type').to.be.instanceOf(Date);
      expect(r.updatedAt.toISOString()).to.equal('2024-06-07T08:09:10.011Z');
      expect(r.disks[0]).to.be.instanceOf(Disk);
      expect(r.disks.map((d) => d.describe())).to.deep.equal(['10 GB', '20 GB']);
    });

    it('an excluded field stays absent after rehydration', async () => {
      const r = await svc.get('i-5');
      expect(r.adminPass).to.equal(undefined);
      expect(r.disks.every((d) => d.encryptionKey === undefined)).to.equal(true);
    });

    it('an array result becomes an array of instances', async () => {
      const list = await svc.list(3);
      expect(list).to.have.length(3);
      for (const [i, r] of list.entries()) {
        expect(r).to.be.instanceOf(Instance);
        expect(r.id).to.equal(`i-${i}`);
        expect(r.createdAt).to.be.instanceOf(Date);
      }
    });

    it('a generator called plainly resolves to an array of instances', async () => {
      const list = await svc.stream(2);
      expect(list.map((r) => r instanceof Instance && r.createdAt instanceof Date)).to.deep.equal([true, true]);
      expect(list.map((r) => r.id)).to.deep.equal(['s-0', 's-1']);
    });

    it('$multicall yields instances, one per item', async () => {
      const ids: string[] = [];
      for await (const r of svc.$multicall.stream(3)) {
        expect(r).to.be.instanceOf(Instance);
        expect(r.createdAt).to.be.instanceOf(Date);
        ids.push(r.id);
      }
      expect(ids).to.deep.equal(['s-0', 's-1', 's-2']);
    });

    it('a null result stays null', async () => {
      expect(await svc.nullInstance()).to.equal(null);
    });

    it('$with() and $to() keep rehydrating', async () => {
      expect(await svc.$with({ timeout: 1500 }).get('a')).to.be.instanceOf(Instance);
      expect(await svc.$to(host).get('b')).to.be.instanceOf(Instance);
    });
  });

  describe('a result JSON cannot carry', () => {
    it('fails the call with a clear error instead of leaving it hanging, and the server keeps serving', async () => {
      const err = await rejectionOf(svc.unserialisable());
      expect(err.message).to.match(/JSON|BigInt/i);
      expect(await svc.primitive('number')).to.equal(42);
    });

    it('a circular result fails the call (no timeout, no crash)', async () => {
      const err = await rejectionOf(svc.$with({ timeout: 1500 }).circular());
      expect(err).to.not.be.instanceOf(RpcTimeoutError);
      expect(await svc.primitive('string')).to.equal('text');
    });
  });
});
