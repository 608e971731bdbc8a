/**
 * Errors (api.md "Errors"): registered classes come back as themselves with their own
 * properties, anything else as RemoteError, Courier's own errors are instanceof-testable,
 * and a handler that throws something that is not an Error still yields a clear error.
 */
import 'reflect-metadata';
import { expect } from 'chai';
import {
  CourierError,
  NoSuchMethodError,
  RemoteError,
  RpcError,
  RpcMethod,
  RpcService,
  RpcTimeoutError,
  UndeliverableError,
  UnsupportedVersionError,
  ValidationError,
  VersionCapError,
  start,
  type App,
  type RpcProxy,
} from '../../index';
import { QuotaExceeded } from '../../sample-services/compute';
import { forEachTransport, uniqueName } from '../support/transports';
import { type CapturingLogger, capturingLogger, cleanTopic, rejectionOf } from './helpers';

// Error classes are registered by name for the whole process, so they are declared
// once here, not per transport.

/** Registered, sets no `name`, carries structured data. */
@RpcError()
class ContractConflict extends Error {
  code = 'E_CONFLICT';
  constructor(
    message: string,
    readonly resource: { kind: string; ids: number[] },
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

@RpcError()
class ContractBaseFailure extends Error {
  constructor(message: string, readonly severity: number) {
    super(message);
    this.name = 'ContractBaseFailure';
  }
}

@RpcError()
class ContractSubFailure extends ContractBaseFailure {
  constructor(message: string, readonly detail: string) {
    super(message, 3);
    this.name = 'ContractSubFailure';
  }
}

/** Its constructor refuses to run without arguments: rebuilding must not need it. */
@RpcError()
class ContractStrictCtor extends Error {
  constructor(readonly required: { must: string }) {
    if (!required?.must) throw new Error('ContractStrictCtor needs an argument');
    super(`strict: ${required.must}`);
  }
}

/** Not registered: the caller cannot know it. */
class ContractUnregistered extends Error {
  constructor(message: string, readonly extra = 1) {
    super(message);
    this.name = 'ContractUnregistered';
  }
}

function expectCourierError<E extends Error>(err: unknown, cls: abstract new (...a: never[]) => E): E {
  expect(err, `${(err as Error)?.name}: ${(err as Error)?.message}`).to.be.instanceOf(cls);
  expect(err).to.be.instanceOf(CourierError);
  expect(err).to.be.instanceOf(Error);
  expect((err as Error).name).to.equal(cls.name);
  return err as E;
}

forEachTransport('contract: errors', (t) => {
  const topic = uniqueName('errors');
  const host = 'errors-host';
  let proxyForNested: RpcProxy<ErrorService> | undefined;

  @RpcService(topic, { version: '1.1' })
  class ErrorService {
    @RpcMethod()
    quota(limit: number): void {
      throw new QuotaExceeded(`only ${limit} vcpus allowed`, limit);
    }

    @RpcMethod()
    async conflict(): Promise<void> {
      throw new ContractConflict('already exists', { kind: 'volume', ids: [1, 2, 3] }, true);
    }

    @RpcMethod()
    sub(): void {
      throw new ContractSubFailure('sub failed', 'disk full');
    }

    @RpcMethod()
    strict(): void {
      throw new ContractStrictCtor({ must: 'arrive' });
    }

    @RpcMethod()
    failPlain(): void {
      throw new ContractUnregistered('not known to the caller \u2603\nsecond line');
    }

    @RpcMethod()
    typeError(): void {
      (null as unknown as { x: number }).x;
    }

    @RpcMethod()
    renamed(): void {
      const e = new Error('named by hand');
      e.name = 'HandNamedError';
      throw e;
    }

    @RpcMethod()
    throwValue(kind: string): void {
      const values: Record<string, unknown> = { string: 'boom', undefined: undefined, null: null, number: 42, object: { code: 7 } };
      throw values[kind];
    }

    @RpcMethod()
    async rejectValue(kind: string): Promise<void> {
      await Promise.resolve();
      return Promise.reject(kind === 'string' ? 'async boom' : undefined);
    }

    @RpcMethod()
    async *breaksMidStream(): AsyncGenerator<number> {
      yield 1;
      yield 2;
      throw new QuotaExceeded('stream quota', 2);
    }

    @RpcMethod()
    async *throwsValueMidStream(): AsyncGenerator<number> {
      yield 1;
      throw 'stream boom';
    }

    @RpcMethod()
    async nested(): Promise<void> {
      // An error from a call the handler makes travels on to the original caller.
      await proxyForNested!.quota(3);
    }

    @RpcMethod()
    async slow(ms: number): Promise<string> {
      await new Promise((r) => setTimeout(r, ms));
      return 'done';
    }

    @RpcMethod({ since: '1.1' })
    newer(): string {
      return 'newer';
    }

    @RpcMethod()
    ok(): string {
      return 'ok';
    }

    notDecorated(): string {
      return 'never';
    }
  }

  let app: App;
  let logger: CapturingLogger;
  let svc: RpcProxy<ErrorService>;

  before(async () => {
    logger = capturingLogger();
    app = await start({ url: t.url, host, services: [ErrorService], logger });
    svc = app.client.proxy(ErrorService, { timeout: 2000 });
    proxyForNested = svc;
  });
  after(async () => {
    await app?.stop();
    await cleanTopic(t, topic, [host]);
  });

  describe('@RpcError classes', () => {
    it('come back as the same class with their own properties (QuotaExceeded with .limit)', async () => {
      const err = await rejectionOf(svc.quota(16));
      expect(err).to.be.instanceOf(QuotaExceeded);
      expect(err).to.be.instanceOf(Error);
      expect(err).to.not.be.instanceOf(RemoteError);
      const q = err as unknown as QuotaExceeded;
      expect(q.limit).to.equal(16);
      expect(q.message).to.equal('only 16 vcpus allowed');
      expect(q.name).to.equal('QuotaExceeded');
    });

    it('keep structured properties, and need not set `name`', async () => {
      const err = await rejectionOf(svc.conflict());
      expect(err).to.be.instanceOf(ContractConflict);
      const c = err as unknown as ContractConflict;
      expect(c.message).to.equal('already exists');
      expect(c.code).to.equal('E_CONFLICT');
      expect(c.resource).to.deep.equal({ kind: 'volume', ids: [1, 2, 3] });
      expect(c.retryable).to.equal(true);
      expect(c.name).to.equal('ContractConflict');
    });

    it('keep their class hierarchy', async () => {
      const err = await rejectionOf(svc.sub());
      expect(err).to.be.instanceOf(ContractSubFailure);
      expect(err).to.be.instanceOf(ContractBaseFailure);
      expect(err).to.include({ severity: 3, detail: 'disk full', message: 'sub failed', name: 'ContractSubFailure' });
    });

    it('are rebuilt without running a constructor that demands arguments', async () => {
      const err = await rejectionOf(svc.strict());
      expect(err).to.be.instanceOf(ContractStrictCtor);
      expect(err.message).to.equal('strict: arrive');
      expect((err as unknown as ContractStrictCtor).required).to.deep.equal({ must: 'arrive' });
    });

    it('carry the remote stack as .remoteStack, and a stack of their own', async () => {
      const err = await rejectionOf(svc.quota(1));
      expect(err.remoteStack).to.be.a('string').that.includes('only 1 vcpus allowed');
      expect(err.remoteStack).to.include('quota');
      expect(err.stack).to.be.a('string').that.is.not.empty;
    });

    it('survive a hop: an error from a call the handler made reaches the original caller as itself', async () => {
      const err = await rejectionOf(svc.nested());
      expect(err).to.be.instanceOf(QuotaExceeded);
      expect((err as unknown as QuotaExceeded).limit).to.equal(3);
    });

    it('thrown mid-stream end a $multicall after the items already yielded', async () => {
      const items: number[] = [];
      const err = await rejectionOf(
        (async () => {
          for await (const i of svc.$multicall.breaksMidStream()) items.push(i);
        })(),
      );
      expect(items).to.deep.equal([1, 2]);
      expect(err).to.be.instanceOf(QuotaExceeded);
      expect((err as unknown as QuotaExceeded).limit).to.equal(2);
    });

    it('thrown mid-stream fail a plain call of the generator', async () => {
      const err = await rejectionOf(svc.breaksMidStream());
      expect(err).to.be.instanceOf(QuotaExceeded);
    });
  });

  describe('other exceptions: RemoteError', () => {
    it('an unregistered class comes back as RemoteError with .remoteName, the message as sent and .remoteStack', async () => {
      const err = await rejectionOf(svc.failPlain());
      const r = expectCourierError(err, RemoteError);
      expect(err).to.not.be.instanceOf(ContractUnregistered);
      expect(r.remoteName).to.equal('ContractUnregistered');
      expect(r.message).to.equal('not known to the caller \u2603\nsecond line');
      expect(r.remoteStack).to.be.a('string').that.includes('ContractUnregistered');
      expect(r.remoteStack).to.include('failPlain');
    });

    it('a built-in JavaScript error keeps its name (TypeError)', async () => {
      const r = expectCourierError(await rejectionOf(svc.typeError()), RemoteError);
      expect(r.remoteName).to.equal('TypeError');
      expect(r.message).to.match(/null/);
    });

    it('an error whose `name` was set by hand is reported under that name', async () => {
      const r = expectCourierError(await rejectionOf(svc.renamed()), RemoteError);
      expect(r.remoteName).to.equal('HandNamedError');
      expect(r.message).to.equal('named by hand');
    });
  });

  describe('a handler that throws something that is not an Error', () => {
    for (const [kind, shows] of [
      ['string', /"boom"/],
      ['undefined', /undefined/],
      ['null', /null/],
      ['number', /42/],
      ['object', /code.*7/],
    ] as const) {
      it(`a thrown ${kind} comes back as a RemoteError that says what was thrown`, async () => {
        const r = expectCourierError(await rejectionOf(svc.throwValue(kind)), RemoteError);
        expect(r.message).to.match(/non-Error/);
        expect(r.message).to.match(shows);
        expect(r.remoteName).to.be.a('string').that.is.not.empty;
      });
    }

    it('a rejected promise with a string or undefined reason does the same', async () => {
      const a = expectCourierError(await rejectionOf(svc.rejectValue('string')), RemoteError);
      expect(a.message).to.match(/non-Error/).and.to.match(/async boom/);
      const b = expectCourierError(await rejectionOf(svc.rejectValue('undefined')), RemoteError);
      expect(b.message).to.match(/non-Error/).and.to.match(/undefined/);
    });

    it('a generator that throws a string mid-stream ends the $multicall with a clear error', async () => {
      const items: number[] = [];
      const err = await rejectionOf(
        (async () => {
          for await (const i of svc.$multicall.throwsValueMidStream()) items.push(i);
        })(),
      );
      expect(items).to.deep.equal([1]);
      expect(expectCourierError(err, RemoteError).message).to.match(/stream boom/);
    });

    it('a cast that throws a string or undefined is logged on the server, clearly', async () => {
      await svc.$cast.throwValue('string');
      const line = await logger.waitFor(/throwValue/);
      expect(line.level).to.equal('error');
      expect(line.message).to.match(/boom/);
      logger.lines.length = 0;
      await svc.$cast.throwValue('undefined');
      const line2 = await logger.waitFor(/throwValue/);
      expect(line2.message).to.match(/non-Error value/).and.to.match(/undefined/);
    });

    it('the server keeps serving afterwards', async () => {
      expect(await svc.ok()).to.equal('ok');
    });
  });

  describe("casts", () => {
    it("a cast's failure is logged on the server with the error's class and message", async () => {
      logger.lines.length = 0;
      await svc.$cast.quota(5);
      const line = await logger.waitFor(/quota/);
      expect(line.level).to.equal('error');
      expect(line.message).to.include('QuotaExceeded').and.to.include('only 5 vcpus allowed');
    });

    it('a cast never blocks on the handler: it resolves while the handler still runs', async () => {
      const t0 = Date.now();
      await svc.$cast.slow(300);
      expect(Date.now() - t0).to.be.below(250);
    });
  });

  describe("Courier's own errors are instanceof-testable on the caller's side", () => {
    it('NoSuchMethodError: a method the server does not have (sent by the functional API)', async () => {
      expectCourierError(await rejectionOf(app.client.call(topic, { method: 'nope' }, { timeout: 1500 })), NoSuchMethodError);
    });

    it('NoSuchMethodError: an undecorated method, refused by the proxy without sending', async () => {
      expectCourierError(await rejectionOf(svc.notDecorated()), NoSuchMethodError);
    });

    it('UnsupportedVersionError: the server is at a lower minor', async () => {
      const err = expectCourierError(await rejectionOf(svc.$with({ version: '1.5' }).ok()), UnsupportedVersionError);
      expect(err.message).to.include('1.5');
    });

    it('VersionCapError: refused locally by versionCap', async () => {
      expectCourierError(await rejectionOf(svc.$with({ versionCap: '1.0' }).newer()), VersionCapError);
    });

    it('ValidationError, with .details', async () => {
      const err = expectCourierError(await rejectionOf(app.client.call(topic, { method: 'quota', args: { limit: 'many' } }, { timeout: 1500 })), ValidationError);
      expect(err.details).to.deep.equal([{ property: 'limit', constraints: err.details[0].constraints }]);
    });

    it('UndeliverableError: nobody serves the topic', async () => {
      expectCourierError(await rejectionOf(app.client.call(uniqueName('nobody'), { method: 'x' }, { timeout: 1500 })), UndeliverableError);
    });

    it('RpcTimeoutError: no reply in time', async () => {
      expectCourierError(await rejectionOf(svc.$with({ timeout: 100 }).slow(400)), RpcTimeoutError);
    });
  });
});
