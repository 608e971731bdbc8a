/**
 * The RabbitMQ transport against a real broker (RPC_TEST_AMQP_URL, default the local
 * guest account). Every test works on names with a random suffix and deletes what it
 * declared; the last test checks with rabbitmqctl that no queue of this run is left.
 */
import { expect } from 'chai';
import * as amqplib from 'amqplib';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { UndeliverableError } from '../../../lib/errors';
import type { Logger } from '../../../lib/logger';
import { createAmqpTransport } from '../../../lib/transport/amqp';
import type { Delivery, Subscription, Transport } from '../../../lib/transport/transport';

const URL = process.env.RPC_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';
const RUN = `courier_amqp_spec_${randomBytes(4).toString('hex')}`;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== (false as unknown)) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function rabbitmqctl(...args: string[]): string {
  return execFileSync('rabbitmqctl', ['-q', ...args], { encoding: 'utf8' });
}

/** Names of the broker's queues that belong to this run. */
function ourQueues(): string[] {
  return rabbitmqctl('list_queues', '--no-table-headers', 'name')
    .split('\n')
    .map((l) => l.trim())
    .filter((n) => n.startsWith(RUN) || n.startsWith('reply_'))
    .filter((n) => n.startsWith(RUN) || trackedReplyQueues.has(n));
}

/** This process's Courier connections (named `<script>:<pid>:<uuid>`), as broker pids. */
function ourConnections(): string[] {
  return rabbitmqctl('list_connections', '--no-table-headers', 'pid', 'client_properties')
    .split('\n')
    .filter((l) => l.includes(`"connection_name",`) && l.includes(`:${process.pid}:`))
    .map((l) => l.split('\t')[0]);
}

const trackedReplyQueues = new Set<string>();

interface Received {
  body: string;
  delivery: Delivery;
}

function collector(autoAck = true): { got: Received[]; onDelivery: (d: Delivery) => void } {
  const got: Received[] = [];
  return {
    got,
    onDelivery: (d) => {
      got.push({ body: d.body.toString(), delivery: d });
      if (autoAck) d.ack();
    },
  };
}

function capturingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    warnings,
    debug: () => {},
    info: () => {},
    warn: (m: string) => warnings.push(m),
    error: (m: string) => warnings.push(m),
  };
}

describe('AMQP transport (real RabbitMQ)', function () {
  this.timeout(30_000);

  let raw: amqplib.ChannelModel;
  let transport: Transport;
  let extraTransports: Transport[];
  let subs: Subscription[];
  // What each test declared, deleted in afterEach with a raw channel.
  let queues: Set<string>;
  let exchanges: Set<string>;
  let n = 0;

  /** A fresh topic (and control exchange) for one test, registered for deletion. */
  function names(servers: string[] = ['s1']): { exchange: string; topic: string } {
    const id = `${RUN}_${++n}`;
    const exchange = `${id}_ex`;
    const topic = `${id}_topic`;
    exchanges.add(exchange);
    exchanges.add(`${topic}_fanout`);
    queues.add(topic);
    for (const s of servers) queues.add(`${topic}.${s}`);
    return { exchange, topic };
  }

  async function subscribe(t: Transport, exchange: string, topic: string, server: string, onDelivery: (d: Delivery) => void, prefetch = 10) {
    const sub = await t.subscribe({ exchange, topic, server }, { prefetch }, onDelivery);
    subs.push(sub);
    return sub;
  }

  /** A raw channel for one check: a 404 or 406 closes it, so never reuse one. */
  async function withRaw<T>(fn: (ch: amqplib.Channel) => Promise<T>): Promise<T> {
    const ch = await raw.createChannel();
    ch.on('error', () => {});
    try {
      return await fn(ch);
    } finally {
      await ch.close().catch(() => {});
    }
  }

  async function queueExists(name: string): Promise<boolean> {
    try {
      await withRaw((ch) => ch.checkQueue(name));
      return true;
    } catch {
      return false;
    }
  }

  let seq = 0;
  const id = () => `${RUN}_msg_${++seq}`;

  before(async () => {
    raw = await amqplib.connect(URL);
    raw.on('error', () => {});
  });

  after(async () => {
    await raw.close();
  });

  beforeEach(async () => {
    queues = new Set();
    exchanges = new Set();
    subs = [];
    extraTransports = [];
    transport = await createAmqpTransport(URL, { logger: capturingLogger() });
  });

  afterEach(async () => {
    for (const s of subs) await s.close();
    for (const t of extraTransports) await t.close();
    await transport.close();
    // One channel per delete: should one fail (it should not), the rest still run.
    for (const q of queues) await withRaw((ch) => ch.deleteQueue(q)).catch(() => {});
    for (const e of exchanges) await withRaw((ch) => ch.deleteExchange(e)).catch(() => {});
  });

  describe('connection', () => {
    it('shares one connection between transports, and the last close() closes it', async () => {
      const second = await createAmqpTransport(URL);
      expect(ourConnections()).to.have.length(1);
      await second.close();
      expect(ourConnections()).to.have.length(1);
      await transport.close();
      await eventually('the connection to close', () => (ourConnections().length === 0 ? true : undefined));
      transport = await createAmqpTransport(URL); // for afterEach
    });

    it('masks the password in displayUrl', () => {
      expect(transport.displayUrl).to.include(':***@');
      const password = new globalThis.URL(URL).password;
      if (password) expect(transport.displayUrl).not.to.include(`:${password}@`);
    });

    it('fails fast, with the password masked, when the broker is unreachable', async () => {
      const started = Date.now();
      let err: Error | undefined;
      try {
        await createAmqpTransport('amqp://guest:TopSecret99@127.0.0.1:1/');
      } catch (e) {
        err = e as Error;
      }
      expect(err, 'should have thrown').to.be.instanceOf(Error);
      expect(err!.message).to.match(/cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1\//);
      expect(err!.message).to.match(/ECONNREFUSED/);
      expect(err!.message).not.to.include('TopSecret99');
      expect(Date.now() - started).to.be.below(3000);
    });

    it('fails fast, with the password masked, when the login is refused', async () => {
      const u = new globalThis.URL(URL);
      u.username = 'guest';
      u.password = 'WrongPass77';
      let err: Error | undefined;
      try {
        await createAmqpTransport(u.toString());
      } catch (e) {
        err = e as Error;
      }
      expect(err, 'should have thrown').to.be.instanceOf(Error);
      expect(err!.message).to.match(/ACCESS.REFUSED/);
      expect(err!.message).to.include('***');
      expect(err!.message).not.to.include('WrongPass77');
    });

    it('fails over to the next host in the list', async () => {
      const u = new globalThis.URL(URL);
      const creds = u.username ? `${u.username}:${u.password}@` : '';
      const failover = `amqp://${creds}127.0.0.1:1,${creds}${u.host}${u.pathname}`;
      const t = await createAmqpTransport(failover);
      extraTransports.push(t);
      const { exchange, topic } = names();
      const c = collector();
      await subscribe(t, exchange, topic, 's1', c.onDelivery);
      await t.publish({ exchange, topic }, Buffer.from('via failover'), { id: id() });
      await eventually('the delivery', () => c.got[0]);
    });
  });

  describe('publish and subscribe', () => {
    it('round-trips a request through the topic queue', async () => {
      const { exchange, topic } = names();
      const c = collector();
      await subscribe(transport, exchange, topic, 's1', c.onDelivery);
      await transport.publish({ exchange, topic }, Buffer.from('{"hello":1}'), { id: id() });
      const got = await eventually('the delivery', () => c.got[0]);
      expect(got.body).to.equal('{"hello":1}');
      expect(got.delivery.redelivered).to.equal(false);
    });

    it('publishes with oslo properties plus message_id, and expiration for calls', async () => {
      const { exchange, topic } = names();
      await subscribe(transport, exchange, topic, 's1', () => {});
      const probe = `${RUN}_probe_${n}`;
      queues.add(probe);
      await withRaw(async (ch) => {
        await ch.assertQueue(probe, { durable: false, autoDelete: false });
        await ch.bindQueue(probe, exchange, `${topic}.probe`);
      });
      const messageId = id();
      await transport.publish({ exchange, topic, server: 'probe' }, Buffer.from('x'), { id: messageId, expirationMs: 60_000 });
      const msg = await withRaw((ch) => eventually('the probe message', async () => (await ch.get(probe, { noAck: true })) || undefined));
      expect(msg.fields.routingKey).to.equal(`${topic}.probe`);
      expect(msg.properties).to.include({
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 2,
        priority: 0,
        expiration: '60000',
        messageId,
      });
      expect(msg.properties.headers).to.deep.equal({});
    });

    it('hands the topic queue round robin to three subscriptions', async () => {
      const { exchange, topic } = names(['s1', 's2', 's3']);
      const cs = [collector(), collector(), collector()];
      for (let i = 0; i < 3; i++) await subscribe(transport, exchange, topic, `s${i + 1}`, cs[i].onDelivery);
      for (let i = 0; i < 6; i++) await transport.publish({ exchange, topic }, Buffer.from(`m${i}`), { id: id() });
      await eventually('all deliveries', () => (cs.reduce((a, c) => a + c.got.length, 0) === 6 ? true : undefined));
      expect(cs.map((c) => c.got.length)).to.deep.equal([2, 2, 2]);
    });

    it('routes to one host with server', async () => {
      const { exchange, topic } = names(['s1', 's2']);
      const a = collector();
      const b = collector();
      await subscribe(transport, exchange, topic, 's1', a.onDelivery);
      await subscribe(transport, exchange, topic, 's2', b.onDelivery);
      for (let i = 0; i < 4; i++) await transport.publish({ exchange, topic, server: 's2' }, Buffer.from(`to s2 #${i}`), { id: id() });
      await eventually('deliveries to s2', () => (b.got.length === 4 ? true : undefined));
      await sleep(100);
      expect(a.got).to.have.length(0);
    });

    it('broadcasts a fanout to every subscription', async () => {
      const { exchange, topic } = names(['s1', 's2', 's3']);
      const cs = [collector(), collector(), collector()];
      for (let i = 0; i < 3; i++) await subscribe(transport, exchange, topic, `s${i + 1}`, cs[i].onDelivery);
      await transport.publish({ exchange, topic, fanout: true }, Buffer.from('all'), { id: id() });
      await eventually('three deliveries', () => (cs.every((c) => c.got.length === 1) ? true : undefined));
      await sleep(100);
      expect(cs.map((c) => c.got.map((g) => g.body))).to.deep.equal([['all'], ['all'], ['all']]);
    });

    it('rejects a publish to an unbound topic with UndeliverableError at once', async () => {
      const { exchange, topic } = names([]);
      const started = Date.now();
      let err: unknown;
      try {
        await transport.publish({ exchange, topic }, Buffer.from('lost'), { id: id(), expirationMs: 60_000 });
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(UndeliverableError);
      expect((err as Error).message).to.include(`"${topic}"`).and.to.include(`"${exchange}"`);
      expect(Date.now() - started).to.be.below(1000);
      // the same for a host nobody serves, on an exchange that now exists
      const err2 = await transport.publish({ exchange, topic, server: 'nobody' }, Buffer.from('lost'), { id: id() }).catch((e: unknown) => e);
      expect(err2).to.be.instanceOf(UndeliverableError);
      expect((err2 as Error).message).to.include(`"${topic}.nobody"`);
    });

    it('rejects a fanout nobody subscribes to with UndeliverableError', async () => {
      const { topic } = names([]);
      const err = await transport.publish({ exchange: 'unused', topic, fanout: true }, Buffer.from('x'), { id: id() }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(UndeliverableError);
      expect((err as Error).message).to.include(`${topic}_fanout`);
    });

    it('turns a fanout exchange deleted under it into UndeliverableError, without disturbing other publishes', async () => {
      const { exchange, topic } = names();
      const c = collector();
      await subscribe(transport, exchange, topic, 's1', c.onDelivery);
      await transport.publish({ exchange, topic, fanout: true }, Buffer.from('first'), { id: id() });
      await withRaw((ch) => ch.deleteExchange(`${topic}_fanout`));
      const results = await Promise.allSettled([
        transport.publish({ exchange, topic, fanout: true }, Buffer.from('gone'), { id: id() }),
        ...Array.from({ length: 20 }, (_, i) => transport.publish({ exchange, topic }, Buffer.from(`ok${i}`), { id: id() })),
      ]);
      expect(results[0].status).to.equal('rejected');
      expect((results[0] as PromiseRejectedResult).reason).to.be.instanceOf(UndeliverableError);
      expect(results.slice(1).map((r) => r.status)).to.deep.equal(Array(20).fill('fulfilled'));
      // A publish caught on the channel the 404 closed is re-sent, so duplicates are allowed.
      const expected = ['first', ...Array.from({ length: 20 }, (_, i) => `ok${i}`)];
      await eventually('every delivery', () => (expected.every((b) => c.got.some((g) => g.body === b)) ? true : undefined));
    });

    it('drops an unconsumed call when its expiration passes', async () => {
      const { exchange, topic } = names();
      const sub = await subscribe(transport, exchange, topic, 's1', () => {});
      await sub.cancel(); // the queues stay, nobody consumes
      await transport.publish({ exchange, topic }, Buffer.from('call'), { id: id(), expirationMs: 200 });
      await transport.publish({ exchange, topic }, Buffer.from('cast'), { id: id() });
      const count = async () => (await withRaw((ch) => ch.checkQueue(topic))).messageCount;
      expect(await count()).to.equal(2);
      await sleep(500);
      const msg = await withRaw((ch) => ch.get(topic, { noAck: true }));
      expect(msg && msg.content.toString()).to.equal('cast');
      expect(await count()).to.equal(0);
    });

    it('redelivers what was not settled when a subscription closes, and ignores settling afterwards', async () => {
      const { exchange, topic } = names(['s1', 's2']);
      const a = collector(false);
      const sub = await subscribe(transport, exchange, topic, 's1', a.onDelivery);
      await transport.publish({ exchange, topic }, Buffer.from('pending'), { id: id() });
      await eventually('the delivery', () => a.got[0]);
      await sub.close();
      expect(() => a.got[0].delivery.ack()).not.to.throw();
      const b = collector();
      await subscribe(transport, exchange, topic, 's2', b.onDelivery);
      const again = await eventually('the redelivery', () => b.got[0]);
      expect(again.body).to.equal('pending');
      expect(again.delivery.redelivered).to.equal(true);
    });

    it('honours prefetch per consumer', async () => {
      const { exchange, topic } = names();
      const c = collector(false);
      await subscribe(transport, exchange, topic, 's1', c.onDelivery, 2);
      for (let i = 0; i < 5; i++) await transport.publish({ exchange, topic }, Buffer.from(`m${i}`), { id: id() });
      await eventually('two deliveries', () => (c.got.length === 2 ? true : undefined));
      await sleep(150);
      expect(c.got).to.have.length(2);
      c.got[0].delivery.ack();
      c.got[1].delivery.reject(true);
      c.got[1].delivery.ack(); // settling twice must not close the channel
      await eventually('more deliveries', () => (c.got.length >= 4 ? true : undefined));
    });

    it('cancel() stops deliveries; close() deletes the fanout queue but keeps the shared queues', async () => {
      const { exchange, topic } = names();
      const c = collector();
      const sub = await subscribe(transport, exchange, topic, 's1', c.onDelivery);
      const fanoutQueues = () => ourQueues().filter((q) => q.startsWith(`${topic}_fanout_`));
      expect(fanoutQueues()).to.have.length(1);
      await sub.cancel();
      await transport.publish({ exchange, topic }, Buffer.from('after cancel'), { id: id() });
      await sleep(150);
      expect(c.got).to.have.length(0);
      await sub.close();
      expect(fanoutQueues()).to.have.length(0);
      expect(await queueExists(topic)).to.equal(true);
      expect(await queueExists(`${topic}.s1`)).to.equal(true);
    });
  });

  describe('replies', () => {
    it('declares one reply queue, shared by concurrent first calls, and round-trips a reply', async () => {
      const got: string[] = [];
      const [name, same] = await Promise.all([transport.replyQueue((b) => got.push(b.toString())), transport.replyQueue(() => {})]);
      trackedReplyQueues.add(name);
      expect(name).to.match(/^reply_[0-9a-f]{32}$/);
      expect(same).to.equal(name);
      expect(await transport.replyQueue(() => {})).to.equal(name);

      const server = await createAmqpTransport(URL);
      extraTransports.push(server);
      await server.reply(name, Buffer.from('{"result":5}'));
      await eventually('the reply', () => got[0]);
      expect(got).to.deep.equal(['{"result":5}']);
    });

    it('declares the reply queue with oslo flags and deletes it on close()', async () => {
      const name = await transport.replyQueue(() => {});
      trackedReplyQueues.add(name);
      await withRaw((ch) => ch.assertQueue(name, { durable: false, autoDelete: false, exclusive: false, arguments: { 'x-expires': 1_800_000 } }));
      await transport.close();
      expect(await queueExists(name)).to.equal(false);
      transport = await createAmqpTransport(URL);
    });

    it('logs and resolves a reply whose queue is gone', async () => {
      const logger = capturingLogger();
      const server = await createAmqpTransport(URL, { logger });
      extraTransports.push(server);
      const missing = `reply_${randomBytes(16).toString('hex')}`;
      await server.reply(missing, Buffer.from('{}'));
      // Replies are unconfirmed: the broker's return arrives a moment later.
      for (let i = 0; i < 200 && !logger.warnings.join('\n').includes(missing); i++) await new Promise((r) => setTimeout(r, 10));
      expect(logger.warnings.join('\n')).to.include(missing);
    });
  });

  describe('declarations match oslo exactly', () => {
    it('default flags: redeclaring with oslo flags succeeds, with other flags fails with 406', async () => {
      const { exchange, topic } = names();
      await subscribe(transport, exchange, topic, 's1', () => {});
      const fanoutQueue = ourQueues().find((q) => q.startsWith(`${topic}_fanout_`))!;
      expect(fanoutQueue).to.match(new RegExp(`^${topic}_fanout_[0-9a-f]{32}$`));

      await withRaw(async (ch) => {
        await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
        await ch.assertQueue(topic, { durable: false, autoDelete: false, exclusive: false });
        await ch.assertQueue(`${topic}.s1`, { durable: false, autoDelete: false, exclusive: false });
        await ch.assertExchange(`${topic}_fanout`, 'fanout', { durable: false, autoDelete: true });
        await ch.assertQueue(fanoutQueue, { durable: false, autoDelete: false, exclusive: false, arguments: { 'x-expires': 1_800_000 } });
      });
      // The check above has teeth:
      const refused = await withRaw((ch) => ch.assertExchange(exchange, 'topic', { durable: true, autoDelete: false })).catch((e: { code?: number }) => e);
      expect(refused).to.have.property('code', 406);
      const refusedQ = await withRaw((ch) => ch.assertQueue(fanoutQueue, { durable: false, autoDelete: false, arguments: { 'x-expires': 60_000 } })).catch(
        (e: { code?: number }) => e,
      );
      expect(refusedQ).to.have.property('code', 406);

      const bindings = rabbitmqctl('list_bindings', '--no-table-headers', 'source_name', 'destination_name', 'routing_key');
      expect(bindings).to.include(`${exchange}\t${topic}\t${topic}`);
      expect(bindings).to.include(`${exchange}\t${topic}.s1\t${topic}.s1`);
      expect(bindings).to.include(`${topic}_fanout\t${fanoutQueue}\t${topic}`);
    });

    it('publishing declares the control exchange with oslo flags before the first publish', async () => {
      const { exchange, topic } = names([]);
      await transport.publish({ exchange, topic }, Buffer.from('x'), { id: id() }).catch(() => {});
      await withRaw((ch) => ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false }));
    });

    it('amqp_durable_queues: durable control exchange and shared queues; fanout stays transient', async () => {
      const t = await createAmqpTransport(`${URL}?amqp_durable_queues=true`);
      extraTransports.push(t);
      const { exchange, topic } = names();
      const sub = await t.subscribe({ exchange, topic, server: 's1' }, { prefetch: 1 }, () => {});
      subs.push(sub);
      await withRaw(async (ch) => {
        await ch.assertExchange(exchange, 'topic', { durable: true, autoDelete: false });
        await ch.assertQueue(topic, { durable: true, autoDelete: false });
        await ch.assertQueue(`${topic}.s1`, { durable: true, autoDelete: false });
        await ch.assertExchange(`${topic}_fanout`, 'fanout', { durable: false, autoDelete: true });
      });
    });

    it('rabbit_quorum_queue (or queueOptions.quorum): quorum shared queues, durable exchange', async () => {
      const t = await createAmqpTransport(URL, { queueOptions: { quorum: true } });
      extraTransports.push(t);
      const { exchange, topic } = names();
      const c = collector();
      const sub = await t.subscribe({ exchange, topic, server: 's1' }, { prefetch: 5 }, c.onDelivery);
      subs.push(sub);
      await withRaw(async (ch) => {
        await ch.assertExchange(exchange, 'topic', { durable: true, autoDelete: false });
        await ch.assertQueue(topic, { durable: true, autoDelete: false, arguments: { 'x-queue-type': 'quorum' } });
        await ch.assertQueue(`${topic}.s1`, { durable: true, autoDelete: false, arguments: { 'x-queue-type': 'quorum' } });
      });
      await t.publish({ exchange, topic }, Buffer.from('q'), { id: id() });
      await eventually('the delivery', () => c.got[0]);
    });

    it('a flag mismatch fails subscribe() with a clear error', async () => {
      const { exchange, topic } = names();
      await withRaw((ch) => ch.assertExchange(exchange, 'topic', { durable: true, autoDelete: false }));
      const err = await transport.subscribe({ exchange, topic, server: 's1' }, { prefetch: 1 }, () => {}).catch((e: Error) => e);
      expect(err).to.be.instanceOf(Error);
      expect((err as Error).message, (err as Error).message).to.match(/PRECONDITION.FAILED/).and.to.include('amqp_durable_queues');
      expect(ourQueues().filter((q) => q.startsWith(`${topic}_fanout_`))).to.have.length(0);
    });
  });

  describe('recovery', () => {
    it('re-declares and consumes again after the connection is killed; publish keeps working', async () => {
      const { exchange, topic } = names();
      const c = collector(false);
      await subscribe(transport, exchange, topic, 's1', c.onDelivery);
      const replies: string[] = [];
      const replyQ = await transport.replyQueue((b) => replies.push(b.toString()));
      trackedReplyQueues.add(replyQ);
      const fanoutBefore = ourQueues().filter((q) => q.startsWith(`${topic}_fanout_`));
      expect(fanoutBefore).to.have.length(1);

      await transport.publish({ exchange, topic }, Buffer.from('before'), { id: id() });
      const before = await eventually('the first delivery', () => c.got[0]);

      const conns = ourConnections();
      expect(conns).to.have.length(1);
      rabbitmqctl('close_connection', conns[0], 'courier amqp.spec recovery test');
      await eventually('a new connection', () => {
        const now = ourConnections();
        return now.length === 1 && now[0] !== conns[0] ? true : undefined;
      });

      // A delivery from the dead channel: settling it must be a harmless no-op.
      expect(() => before.delivery.ack()).not.to.throw();

      // Publishes resolve once the topology is back, and the subscription receives them.
      await eventually(
        'a publish to succeed after recovery',
        async () => ((await transport.publish({ exchange, topic }, Buffer.from('after'), { id: id() }).then(() => true, () => undefined)) ? true : undefined),
      );
      const after = await eventually('a delivery after recovery', () => c.got.find((g) => g.body === 'after'));
      after.delivery.ack();
      // 'before' was never acked on a live channel, so it comes back.
      await eventually('the redelivery of the unacked message', () => c.got.find((g) => g.body === 'before' && g.delivery.redelivered));

      // Same fanout queue name as before, and fanout still reaches us.
      expect(ourQueues().filter((q) => q.startsWith(`${topic}_fanout_`))).to.deep.equal(fanoutBefore);
      await transport.publish({ exchange, topic, fanout: true }, Buffer.from('fanout after'), { id: id() });
      await eventually('the fanout after recovery', () => c.got.find((g) => g.body === 'fanout after'));

      // The reply queue came back under the same name.
      await transport.reply(replyQ, Buffer.from('reply after'));
      await eventually('the reply after recovery', () => replies.find((r) => r === 'reply after'));
      for (const g of c.got) g.delivery.ack();
    });

    it('re-sends publishes caught by the connection loss', async () => {
      const { exchange, topic } = names();
      const c = collector();
      await subscribe(transport, exchange, topic, 's1', c.onDelivery);
      await transport.publish({ exchange, topic }, Buffer.from('warm'), { id: id() });
      const conns = ourConnections();
      const inFlight = Array.from({ length: 50 }, (_, i) => transport.publish({ exchange, topic }, Buffer.from(`p${i}`), { id: id() }));
      rabbitmqctl('close_connection', conns[0], 'courier amqp.spec resend test');
      const results = await Promise.allSettled(inFlight);
      expect(results.filter((r) => r.status === 'rejected')).to.deep.equal([]);
      await eventually('all 50 delivered (duplicates allowed)', () => {
        const bodies = new Set(c.got.map((g) => g.body));
        return Array.from({ length: 50 }, (_, i) => `p${i}`).every((b) => bodies.has(b)) ? true : undefined;
      });
    });
  });

  describe('closing', () => {
    it('rejects use after close()', async () => {
      const t = await createAmqpTransport(URL);
      await t.close();
      await t.close(); // idempotent
      const err = await t.publish({ exchange: 'x', topic: 'y' }, Buffer.from(''), { id: id() }).catch((e: Error) => e);
      expect(err).to.be.instanceOf(Error);
      expect((err as Error).message).to.match(/closed/);
    });
  });

  describe('leftovers', () => {
    it('leaves no queue of this run on the broker', async () => {
      await eventually('no queue left', () => (ourQueues().length === 0 ? true : undefined), 3000).catch(() => {
        throw new Error(`left on the broker: ${ourQueues().join(', ')}`);
      });
    });
  });
});
