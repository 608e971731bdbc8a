/**
 * Safety of dispatch (api.md "Declaring a service", "Precise points"): hand-made hostile
 * messages each get a clear error reply (calls) or a logged rejection (casts), nothing
 * is polluted, and the server keeps serving correct calls afterwards.
 *
 * The bodies are written as JSON text, never built with JSON.stringify from object
 * literals, so keys such as `__proto__` reach the server exactly as an attacker sends them.
 */
import 'reflect-metadata';
import { expect } from 'chai';
import { IsString } from 'class-validator';
import { NoSuchMethodError, RemoteError, RpcMethod, RpcService, UnsupportedVersionError, ValidationError, start, type App, type RpcProxy } from '../../index';
import { newId } from '../../lib/protocol/envelope';
import { forEachTransport, uniqueName } from '../support/transports';
import { type CapturingLogger, RawPeer, capturingLogger, cleanTopic, delay, envelope, replyError } from './helpers';

class Named {
  @IsString() name!: string;
}

/** What Object.prototype looks like before any hostile message. */
const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype).sort();
const PROTOTYPE_TO_STRING = Object.prototype.toString;

function expectNothingPolluted(): void {
  const probe = {} as Record<string, unknown>;
  expect(probe.polluted, 'Object.prototype.polluted').to.equal(undefined);
  expect(probe.isAdmin, 'Object.prototype.isAdmin').to.equal(undefined);
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).to.deep.equal(PROTOTYPE_NAMES);
  expect(Object.prototype.toString).to.equal(PROTOTYPE_TO_STRING);
  expect(([] as unknown as Record<string, unknown>).polluted).to.equal(undefined);
}

/** `[[[...1...]]]`, `depth` arrays deep, as JSON text. */
function nested(depth: number): string {
  return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
}

forEachTransport('contract: hostile messages', (t) => {
  const topic = uniqueName('hostile');
  const host = 'hostile-host';
  const illegal: string[] = [];

  class Base {
    inherited(): string {
      illegal.push('inherited');
      return 'inherited ran';
    }
  }

  @RpcService(topic)
  class Target extends Base {
    @RpcMethod()
    ok(x: number): number {
      return x + 1;
    }

    @RpcMethod()
    named(who: Named): string {
      return `hello ${who.name}`;
    }

    @RpcMethod()
    loose(opts: object): { keys: string[]; plainPrototype: boolean; polluted: unknown } {
      return { keys: Object.keys(opts), plainPrototype: Object.getPrototypeOf(opts) === Object.prototype, polluted: (opts as Record<string, unknown>).polluted ?? null };
    }

    @RpcMethod()
    context(): { keys: string[]; plainPrototype: boolean } {
      return { keys: [], plainPrototype: true };
    }

    @RpcMethod()
    async slow(ms: number): Promise<string> {
      await delay(ms);
      return 'slow done';
    }

    helper(): string {
      illegal.push('helper');
      return 'helper ran';
    }

    _private(): string {
      illegal.push('_private');
      return 'private ran';
    }
  }

  let app: App;
  let peer: RawPeer;
  let logger: CapturingLogger;
  let svc: RpcProxy<Target>;

  before(async () => {
    logger = capturingLogger();
    app = await start({ url: t.url, host, services: [Target], logger });
    peer = await RawPeer.open(t);
    svc = app.client.proxy(Target, { timeout: 1500 });
  });
  after(async () => {
    await peer?.close();
    await app?.stop();
    await cleanTopic(t, topic, [host]);
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') return;
    expectNothingPolluted();
    expect(illegal, 'an undecorated method ran').to.deep.equal([]);
    // The server still answers correct calls.
    expect(await svc.ok(41)).to.equal(42);
  });

  /** A call whose inner message is `fields` (JSON text without braces) plus the reply address. */
  function rawCall(fields: string, opts: { version?: string; timeoutMs?: number } = {}) {
    return peer.call(
      topic,
      (msgId, replyQ) => envelope(`{${fields}${fields ? ',' : ''}"_msg_id":"${msgId}","_reply_q":"${replyQ}","_unique_id":"${newId()}"}`, opts.version),
      opts.timeoutMs ?? 1500,
    );
  }

  /** The same message as a cast: no reply address. */
  async function rawCast(fields: string): Promise<void> {
    await peer.publish(topic, envelope(`{${fields}${fields ? ',' : ''}"_unique_id":"${newId()}"}`));
  }

  describe('methods that are not callable', () => {
    const names = ['nope', 'constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'isPrototypeOf', 'then', '_private', 'helper', 'inherited'];
    for (const name of names) {
      it(`a call to ${JSON.stringify(name)} gets NoSuchMethodError naming it`, async () => {
        const err = replyError(await rawCall(`"method":${JSON.stringify(name)},"args":{}`));
        expect(err, err.message).to.be.instanceOf(NoSuchMethodError);
        expect(err.message).to.include(name);
      });
    }

    it('the same names through the functional API and the typed proxy', async () => {
      for (const name of ['constructor', '__proto__', 'toString', '_private', 'helper', 'inherited']) {
        const viaCall = await app.client.call(topic, { method: name }, { timeout: 1500 }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(viaCall, name).to.be.instanceOf(NoSuchMethodError);
        const viaProxy = await (svc as unknown as Record<string, () => Promise<unknown>>)[name]().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(viaProxy, name).to.be.instanceOf(NoSuchMethodError);
      }
    });

    it('a cast to each of them is refused and logged, naming the method', async () => {
      for (const name of ['constructor', '__proto__', 'toString', '_private', 'helper', 'inherited']) {
        logger.lines.length = 0;
        await rawCast(`"method":${JSON.stringify(name)},"args":{}`);
        const line = await logger.waitFor(/NoSuchMethod/);
        expect(line.message).to.include(name);
      }
    });
  });

  describe('args that are not a keyword dictionary', () => {
    for (const [what, json] of [
      ['an array', '[1,2]'],
      ['a string', '"x"'],
      ['a number', '5'],
      ['null', 'null'],
      ['true', 'true'],
    ] as const) {
      it(`args as ${what} gets an error reply saying so`, async () => {
        const err = replyError(await rawCall(`"method":"ok","args":${json}`));
        expect(err).to.be.instanceOf(RemoteError);
        expect(err.message).to.match(/args must be an object/);
      });
    }

    it('as a cast, it is a logged rejection', async () => {
      logger.lines.length = 0;
      await rawCast('"method":"ok","args":[1]');
      expect((await logger.waitFor(/args must be an object/)).level).to.equal('warn');
    });
  });

  describe('keys that try to reach a prototype', () => {
    it('args with a __proto__ key are refused as an unknown argument', async () => {
      const err = replyError(await rawCall('"method":"ok","args":{"x":1,"__proto__":{"polluted":true,"isAdmin":true}}'));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).details.map((d) => d.property)).to.deep.equal(['__proto__']);
    });

    it('args with constructor or prototype keys are refused the same way', async () => {
      const err = replyError(await rawCall('"method":"ok","args":{"x":1,"constructor":{"prototype":{"polluted":true}},"prototype":{"polluted":true}}'));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).details.map((d) => d.property).sort()).to.deep.equal(['constructor', 'prototype']);
    });

    it('a __proto__ key inside a DTO is refused, naming its path', async () => {
      const err = replyError(await rawCall('"method":"named","args":{"who":{"name":"a","__proto__":{"polluted":true}}}'));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).details.map((d) => d.property)).to.deep.equal(['who.__proto__']);
    });

    it('constructor.prototype nested deep inside a DTO is refused', async () => {
      const err = replyError(await rawCall('"method":"named","args":{"who":{"name":"a","inner":[{"constructor":{"prototype":{"polluted":true}}}]}}'));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).details[0].property).to.match(/^who\.inner\.0\.constructor/);
    });

    it('an untyped parameter receives __proto__ as plain data, its prototype untouched', async () => {
      const reply = await rawCall('"method":"loose","args":{"opts":{"a":1,"__proto__":{"polluted":true}}}');
      expect(reply.failure).to.equal(null);
      expect(reply.result).to.deep.equal({ keys: ['a', '__proto__'], plainPrototype: true, polluted: null });
    });

    it('_context___proto__ and _context_constructor keys stay data', async () => {
      const reply = await rawCall('"method":"ok","args":{"x":1},"_context___proto__":{"polluted":true},"_context_constructor":{"prototype":{"polluted":true}}');
      expect(reply.failure).to.equal(null);
      expect(reply.result).to.equal(2);
    });

    it('as casts, each is a logged rejection', async () => {
      logger.lines.length = 0;
      await rawCast('"method":"named","args":{"who":{"name":"a","__proto__":{"polluted":true}}}');
      const line = await logger.waitFor(/cast named failed/);
      expect(line.message).to.include('who.__proto__');
    });
  });

  describe('huge nesting depth', () => {
    it('deeply nested args get an error reply, not a crash', async () => {
      const err = replyError(await rawCall(`"method":"loose","args":{"opts":{"x":${nested(100_000)}}}`));
      expect(err).to.be.instanceOf(RemoteError);
      expect(err.message).to.match(/nested deeper/);
    });

    it('deeply nested context values get an error reply too', async () => {
      const err = replyError(await rawCall(`"method":"ok","args":{"x":1},"_context_deep":${nested(100_000)}`));
      expect(err.message).to.match(/nested deeper/);
    });

    it('moderate nesting is served', async () => {
      const reply = await rawCall(`"method":"loose","args":{"opts":{"x":${nested(20)}}}`);
      expect(reply.failure).to.equal(null);
    });

    it('as a cast, a logged rejection', async () => {
      logger.lines.length = 0;
      await rawCast(`"method":"loose","args":{"opts":${nested(100_000)}}`);
      await logger.waitFor(/nested deeper/);
    });
  });

  describe('bodies that cannot be read', () => {
    for (const [what, body, reason] of [
      ['not JSON', Buffer.from('this is { not json'), /not JSON/],
      ['empty', Buffer.alloc(0), /not JSON/],
      ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0x7b]), /not JSON/],
      ['a JSON array', Buffer.from('[1,2,3]'), /JSON object/],
      ['JSON null', Buffer.from('null'), /JSON object/],
      ['an envelope whose message is not JSON', Buffer.from('{"oslo.version":"2.0","oslo.message":"{broken"}'), /oslo\.message is not JSON/],
      ['an envelope whose message is not an object', Buffer.from('{"oslo.version":"2.0","oslo.message":"[1]"}'), /oslo\.message must be a JSON object/],
    ] as const) {
      it(`a body that is ${what} is rejected once, logged, and not redelivered`, async () => {
        logger.lines.length = 0;
        await peer.publish(topic, body);
        const line = await logger.waitFor(reason);
        expect(line.level).to.equal('warn');
        await delay(100);
        expect(logger.matching(reason), 'rejected more than once: requeued?').to.have.length(1);
      });
    }
  });

  describe('envelopes and fields of the wrong kind', () => {
    it('a wrong envelope version gets an error reply naming it', async () => {
      const err = replyError(await rawCall('"method":"ok","args":{"x":1}', { version: '3.0' }));
      expect(err.message).to.match(/envelope version/).and.to.include('3.0');
    });

    it('as a cast, a wrong envelope version is a logged rejection', async () => {
      logger.lines.length = 0;
      await peer.publish(topic, envelope('{"method":"ok","args":{"x":1}}', '1.5'));
      await logger.waitFor(/envelope version/);
    });

    it('a request without a method gets an error reply', async () => {
      expect(replyError(await rawCall('"args":{}')).message).to.match(/no method/);
      expect(replyError(await rawCall('"method":5,"args":{}')).message).to.match(/no method/);
      expect(replyError(await rawCall('"method":"","args":{}')).message).to.match(/no method/);
    });

    it('a version that is null, not a string, or not X.Y is refused clearly', async () => {
      expect(replyError(await rawCall('"method":"ok","args":{"x":1},"version":null')).message).to.match(/version/);
      expect(replyError(await rawCall('"method":"ok","args":{"x":1},"version":1.0')).message).to.match(/version/);
      const noMinor = replyError(await rawCall('"method":"ok","args":{"x":1},"version":"1"'));
      expect(noMinor).to.be.instanceOf(UnsupportedVersionError);
      expect(replyError(await rawCall('"method":"ok","args":{"x":1},"version":"abc"'))).to.be.instanceOf(UnsupportedVersionError);
    });

    it('a namespace that is not a string is refused', async () => {
      expect(replyError(await rawCall('"method":"ok","args":{"x":1},"namespace":{"a":1}')).message).to.match(/namespace/);
    });

    it('a huge _timeout does not make the server flood the caller with heartbeats', async () => {
      let msgId = '';
      await peer.call(topic, (id, replyQ) => {
        msgId = id;
        return envelope(`{"method":"slow","args":{"ms":200},"_msg_id":"${id}","_reply_q":"${replyQ}","_timeout":1e10,"_unique_id":"${newId()}"}`);
      });
      await delay(50); // anything still on its way
      const replies = peer.repliesTo(msgId);
      expect(replies.filter((r) => r.ending && r.result === 'slow done')).to.have.length(1);
      expect(replies.length, `${replies.length} replies for one call`).to.be.at.most(2);
    });

    it('a _timeout that is not a number is ignored', async () => {
      const reply = await rawCall('"method":"ok","args":{"x":1},"_timeout":"abc"');
      expect(reply.result).to.equal(2);
    });

    it('a reply queue that does not exist costs a log line, nothing more', async () => {
      logger.lines.length = 0;
      const gone = `reply_${newId()}`;
      await peer.publish(topic, envelope(`{"method":"ok","args":{"x":1},"_msg_id":"${newId()}","_reply_q":"${gone}","_unique_id":"${newId()}"}`));
      const line = await logger.waitFor(/reply dropped|could not send a reply/);
      expect(line.message).to.include(gone);
    });

    it('a repeated _unique_id is dropped (and logged), so a replayed call runs once', async () => {
      logger.lines.length = 0;
      const msgId = newId();
      const body = envelope(`{"method":"ok","args":{"x":1},"_msg_id":"${msgId}","_reply_q":"${peer.replyQ}","_unique_id":"${newId()}"}`);
      await peer.publish(topic, body);
      await peer.publish(topic, body);
      await logger.waitFor(/duplicate/);
      await delay(50);
      expect(peer.repliesTo(msgId)).to.have.length(1);
    });
  });

  describe('the legacy form oslo still accepts', () => {
    it('a bare message without the envelope is served (oslo 1.0 format)', async () => {
      const reply = await peer.call(topic, (msgId, replyQ) => Buffer.from(`{"method":"ok","args":{"x":9},"_msg_id":"${msgId}","_reply_q":"${replyQ}"}`));
      expect(reply.result).to.equal(10);
    });
  });

  describe('all at once', () => {
    it('a burst of every hostile kind, then correct calls: all answered, nothing polluted', async () => {
      const calls = [
        '"method":"constructor","args":{}',
        '"method":"__proto__","args":{}',
        '"method":"_private","args":{}',
        '"method":"inherited","args":{}',
        '"method":"ok","args":[1]',
        '"method":"ok","args":{"__proto__":{"polluted":true}}',
        `"method":"loose","args":{"opts":${nested(10_000)}}`,
      ];
      const casts = [Buffer.from('garbage'), envelope('{"method":"toString","args":{}}'), envelope('{"method":"ok","args":{"__proto__":{"isAdmin":true}}}')];
      const replies = Promise.all(calls.map((c) => rawCall(c)));
      await Promise.all(casts.map((b) => peer.publish(topic, b)));
      const correct = await Promise.all([svc.ok(1), svc.ok(2), svc.ok(3)]);
      expect(correct).to.deep.equal([2, 3, 4]);
      const all = await replies;
      expect(all.every((r) => typeof r.failure === 'string')).to.equal(true);
    });
  });
});
