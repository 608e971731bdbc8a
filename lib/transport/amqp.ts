/**
 * `rabbit://` / `amqp://`: the RabbitMQ transport, speaking oslo.messaging's topology
 * with oslo's exact declaration flags (oslo-wire.md sections 2-5), so Python peers can
 * declare the same exchanges and queues without 406 PRECONDITION_FAILED.
 *
 * Layout, per process and broker (hosts + vhost + credentials):
 * - ONE recovering amqplib connection, shared by every transport through a refcounted
 *   registry; the last `close()` really closes it. TCP_NODELAY is on: without it, Nagle
 *   plus delayed ACKs cost ~40 ms per sequential call.
 * - a small pool of confirm channels behind `publish()` and `reply()`. Every publish is
 *   mandatory and resolves on the broker's confirm. A basic.return always reaches us
 *   before the ack of the same message, so returns are noted by message id (requests
 *   carry `message_id` = the envelope's unique id) or by queue name (replies), and the
 *   ack that follows turns into `UndeliverableError` (requests) or a logged drop (replies).
 * - one admin channel for declarations the publisher needs and for deletes, so that a
 *   406 on a declaration never kills publishes in flight.
 * - one plain channel per subscription (three consumers: topic, host and fanout queue,
 *   with a per-consumer prefetch) and one per reply queue (no-ack, see ReplyConsumer).
 *
 * Recovery: amqplib brings the connection back; channels are ours to re-create. Each
 * subscription and reply consumer watches its own channel, and when it closes without
 * being asked to, re-declares its topology under the SAME names and consumes again,
 * backing off while the broker is away. Publishes caught by a channel closing are
 * re-sent once a channel is back (the server side drops duplicates by unique id, as
 * oslo relies on); a publish that itself made the broker close the channel is not.
 *
 * Hot path: `publish()` checks declarations synchronously (a Set per transport, reset
 * when the connection drops) and goes straight to a pool channel that is already open;
 * it allocates a promise and a confirm callback, and reuses one property object.
 */
import * as amqplib from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, Options, RecoveringChannelModel } from 'amqplib';
import type { Writable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';
import { UndeliverableError } from '../errors';
import { consoleLogger, type Logger } from '../logger';
import { parseAmqpUrl, type AmqpConfig } from './amqp-url';
import type { Delivery, PublishOptions, PublishTarget, SubscribeOptions, SubscribeTarget, Subscription, Transport } from './transport';

export interface AmqpTransportOptions {
  /**
   * Override the URL's `amqp_durable_queues` / `rabbit_quorum_queue`. Every peer on an
   * exchange must agree on these, or the broker refuses the second declaration (406).
   */
  queueOptions?: { durable?: boolean; quorum?: boolean };
  /** Where reconnects, dropped replies and recovery failures are reported. */
  logger?: Logger;
  /**
   * Confirm channels behind publish() and reply() (default 2). The pool belongs to the
   * shared connection, so the first transport to open it decides.
   */
  publishChannels?: number;
}

/**
 * Open (or join) this process's connection to the broker of `url` and return a
 * transport on it. Rejects at once, with the password masked, if the broker cannot be
 * reached or refuses the login; after that, connection losses are recovered forever.
 */
export async function createAmqpTransport(url: string, options: AmqpTransportOptions = {}): Promise<Transport> {
  const config = parseAmqpUrl(url);
  const q = options.queueOptions ?? {};
  const quorum = q.quorum ?? config.quorumQueues;
  if (quorum && config.autoDelete) throw new TypeError(`${config.displayUrl}: quorum queues cannot be auto-delete (amqp_auto_delete)`);
  const poolSize = options.publishChannels ?? DEFAULT_PUBLISH_CHANNELS;
  if (!Number.isInteger(poolSize) || poolSize < 1) throw new TypeError(`publishChannels must be a whole number >= 1, got ${String(poolSize)}`);
  const logger = options.logger ?? consoleLogger();
  const conn = await acquireConnection(config, logger, poolSize);
  return new AmqpTransport(conn, config, logger, q.durable ?? config.durableQueues, quorum);
}

// Measured at 64 calls in flight on a 2-core broker host: 1 and 2 channels match raw
// amqplib, 4 lose ~25% to broker-side contention. Two keep a channel the broker closes
// (e.g. 404 on a vanished fanout exchange) from stalling every publish.
const DEFAULT_PUBLISH_CHANNELS = 2;
/** Attempts per host before the first connection gives up (fail fast at startup). */
const INITIAL_ATTEMPTS_PER_HOST = 2;
const CONNECT_TIMEOUT_MS = 5000;
const CLEANUP_TIMEOUT_MS = 5000;
/** Times a publish is re-sent after the broker closed its channel for another reason. */
const MAX_REFUSED_RESENDS = 3;
/** Channel re-creation backoff, while the broker is away or refuses a declaration. */
const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 5000;

const retryDelay = (attempt: number): number => Math.min(RETRY_BASE_MS * 2 ** attempt, RETRY_MAX_MS);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const uuidHex = (): string => randomUUID().replace(/-/g, '');
const noop = (): void => {};

/** What amqplib puts on errors from a broker-side channel or connection close. */
type BrokerError = Error & { code?: number };

function isBrokerRefusal(err: unknown): err is BrokerError {
  return err instanceof Error && typeof (err as BrokerError).code === 'number';
}

// ---------------------------------------------------------------------------------------
// The shared connection

const registry = new Map<string, { refs: number; ready: Promise<SharedConnection> }>();

async function acquireConnection(config: AmqpConfig, logger: Logger, poolSize: number): Promise<SharedConnection> {
  // Declaration flags are per transport; only what identifies the session matters here.
  const key = JSON.stringify([config.hosts, config.vhost, config.heartbeatSeconds, config.frameMax]);
  let entry = registry.get(key);
  if (!entry) {
    const created = { refs: 0, ready: SharedConnection.open(key, config, logger, poolSize) };
    registry.set(key, created);
    created.ready.catch(() => {
      if (registry.get(key) === created) registry.delete(key);
    });
    entry = created;
  }
  entry.refs++;
  return entry.ready;
}

class SharedConnection {
  /** Bumped on every disconnect: what was declared before may be gone (broker restart). */
  generation = 0;
  connected = true;
  closed = false;
  readonly pool: PublisherPool;
  readonly direct: DirectPublisher;
  private admin: Promise<Channel> | null = null;

  private constructor(
    private readonly key: string,
    readonly model: RecoveringChannelModel,
    readonly displayUrl: string,
    poolSize: number,
    readonly logger: Logger,
  ) {
    this.pool = new PublisherPool(this, poolSize);
    this.direct = new DirectPublisher(this);
  }

  static async open(key: string, config: AmqpConfig, logger: Logger, poolSize: number): Promise<SharedConnection> {
    const hosts = config.hosts;
    let current = 0;
    // amqplib re-reads this object on every attempt, so failover is a matter of
    // pointing it at the next host after an attempt fails.
    const target: Options.Connect = { protocol: 'amqp', vhost: encodeURIComponent(config.vhost), heartbeat: config.heartbeatSeconds };
    if (config.frameMax !== undefined) target.frameMax = config.frameMax;
    const aim = (i: number): void => {
      const h = hosts[i];
      target.hostname = h.hostname;
      target.port = h.port;
      target.username = h.username;
      target.password = h.password;
    };
    aim(0);

    const model = await amqplib.connect(target, {
      noDelay: true,
      timeout: CONNECT_TIMEOUT_MS,
      clientProperties: { connection_name: `${basename(process.argv[1] ?? 'node')}:${process.pid}:${randomUUID()}` },
      recovery: {
        initialDelay: RETRY_BASE_MS,
        maxDelay: RETRY_MAX_MS,
        initialMaxRetries: hosts.length * INITIAL_ATTEMPTS_PER_HOST - 1,
        maxRetries: Infinity,
        waitForConnect: false,
      },
    });
    model.on('connect', coalesceWrites);
    let lastFailure: Error | undefined;
    model.on('connect-failed', (err: Error) => {
      lastFailure = err;
      current = (current + 1) % hosts.length;
      aim(current);
    });
    // An 'error' without a listener would crash the process; the close that follows it
    // is what recovery acts on.
    model.on('error', noop);
    try {
      await model.waitForConnect();
    } catch (err) {
      await model.close().catch(noop);
      const why = (lastFailure ?? (err as Error)).message;
      throw new Error(`cannot connect to RabbitMQ at ${config.displayUrl}: ${why}`, { cause: lastFailure ?? err });
    }

    const conn = new SharedConnection(key, model, config.displayUrl, poolSize, logger);
    model.on('disconnect', (err: Error) => {
      conn.connected = false;
      conn.generation++;
      conn.admin = null;
      if (!conn.closed) logger.warn(`lost the connection to RabbitMQ at ${conn.displayUrl} (${err.message}); reconnecting`);
    });
    model.on('connect', () => {
      if (conn.connected) return;
      conn.connected = true;
      logger.info(`reconnected to RabbitMQ at ${conn.displayUrl} (${hosts[current].hostname}:${hosts[current].port})`);
    });
    model.on('connect-failed', (err: Error) => logger.warn(`reconnecting to RabbitMQ at ${conn.displayUrl} failed: ${err.message}`));
    model.on('blocked', (reason: string) => logger.warn(`RabbitMQ at ${conn.displayUrl} blocks publishing: ${reason}`));
    model.on('unblocked', () => logger.info(`RabbitMQ at ${conn.displayUrl} accepts publishing again`));
    return conn;
  }

  /** Drop one reference; the last one closes the connection for good. */
  async release(): Promise<void> {
    const entry = registry.get(this.key);
    if (entry && --entry.refs > 0) return;
    if (entry) registry.delete(this.key);
    this.closed = true;
    this.pool.close();
    this.direct.close();
    await this.model.close().catch(noop);
  }

  /**
   * Run a declaration or delete on the admin channel. A broker refusal (406, 403, ...)
   * is thrown as is; a channel lost with the connection is retried on a new one.
   */
  async withAdmin<T>(op: (ch: Channel) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await op(await this.adminChannel());
      } catch (err) {
        if (isBrokerRefusal(err) || this.closed || attempt >= 5) throw err;
        await sleep(retryDelay(attempt));
      }
    }
  }

  /**
   * Best-effort cleanup on close: skipped while the broker is away (x-expires collects
   * what we leave), and bounded so that close() never hangs on a dead broker.
   */
  async cleanup(what: string, op: (ch: Channel) => Promise<unknown>, logger?: Logger): Promise<void> {
    if (!this.connected || this.closed) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${CLEANUP_TIMEOUT_MS} ms`)), CLEANUP_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.withAdmin(op), timeout]);
    } catch (err) {
      logger?.warn(`could not ${what} on ${this.displayUrl}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  private adminChannel(): Promise<Channel> {
    if (this.closed) return Promise.reject(new Error(`the connection to ${this.displayUrl} is closed`));
    if (this.admin) return this.admin;
    const opening = this.model.createChannel().then((ch) => {
      ch.on('error', noop); // the refused operation gets the error itself
      ch.on('close', () => {
        if (this.admin === opening) this.admin = null;
      });
      return ch;
    });
    opening.catch(() => {
      if (this.admin === opening) this.admin = null;
    });
    this.admin = opening;
    return opening;
  }

  /** A channel, retried with backoff if one cannot be opened right now (broker away). */
  async openChannel<C extends Channel>(create: () => Promise<C>): Promise<C> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new Error(`the connection to ${this.displayUrl} is closed`);
      try {
        return await create();
      } catch (err) {
        // amqplib waits for a reconnect by itself; an error here is either the instant
        // between a socket dying and recovery noticing, or a real refusal.
        if (this.closed || attempt >= 10) throw err;
        await sleep(retryDelay(attempt));
      }
    }
  }
}

/**
 * amqplib hands the socket one write per frame batch, and with TCP_NODELAY on each one
 * is a syscall and often a packet of its own: profiles showed a third of the process's
 * time in socket writes. Corking the socket at the first write of a tick and uncorking
 * it on the next tick turns everything written in one turn of the event loop (many
 * publishes, acks and replies) into a single writev, without delaying any of it.
 */
function coalesceWrites(model: ChannelModel): void {
  const socket = (model.connection as unknown as { stream?: Writable }).stream;
  if (!socket || typeof socket.cork !== 'function') return;
  const write = socket.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Writable, ...args: Parameters<Writable['write']>): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Writable['write'];
}

// ---------------------------------------------------------------------------------------
// Publishing

/** One confirm channel of the pool, with what we learnt about it. */
interface PoolChannel {
  ch: ConfirmChannel;
  /** Message ids (requests) and queue names (replies) returned, awaiting their ack. */
  returned: Set<string>;
  /** Set when the broker closed the channel, e.g. 404 on a publish to a missing exchange. */
  closeError: BrokerError | null;
  closed: boolean;
}

/** A publish on its way, kept until its confirm so it can be re-sent. */
class Pending {
  attempts = 0;
  constructor(
    readonly exchange: string,
    readonly key: string,
    readonly body: Buffer,
    /** Undefined for replies. */
    readonly id: string | undefined,
    readonly expiration: string | undefined,
    /** The publishing transport: forgets the exchange if it turns out missing, logs drops. */
    readonly owner: AmqpTransport,
    readonly resolve: () => void,
    readonly reject: (err: Error) => void,
  ) {}
}

/**
 * oslo's properties on every publish (oslo-wire.md section 5), plus `message_id` to
 * correlate returns. amqplib encodes them synchronously inside publish(), so each
 * publisher keeps one object and refills `messageId`/`expiration` per message instead
 * of allocating one.
 */
function publishProperties(): Options.Publish {
  return {
    mandatory: true,
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    deliveryMode: 2,
    priority: 0,
    headers: {},
    messageId: undefined,
    expiration: undefined,
  };
}

class PublisherPool {
  private readonly slots: (PoolChannel | null)[];
  private readonly opening: (Promise<PoolChannel> | null)[];
  private next = 0;
  private closed = false;
  private readonly props = publishProperties();

  constructor(
    private readonly conn: SharedConnection,
    private readonly size: number,
  ) {
    this.slots = new Array<PoolChannel | null>(size).fill(null);
    this.opening = new Array<Promise<PoolChannel> | null>(size).fill(null);
  }

  send(exchange: string, key: string, body: Buffer, id: string | undefined, expiration: string | undefined, owner: AmqpTransport): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`the connection to ${this.conn.displayUrl} is closed`));
    const i = this.next;
    this.next = i + 1 === this.size ? 0 : i + 1;
    const pc = this.slots[i];
    return new Promise<void>((resolve, reject) => {
      const p = new Pending(exchange, key, body, id, expiration, owner, resolve, reject);
      if (pc !== null) this.write(pc, p);
      else this.writeWhenOpen(i, p);
    });
  }

  close(): void {
    this.closed = true;
  }

  private write(pc: PoolChannel, p: Pending): void {
    const props = this.props;
    props.messageId = p.id;
    props.expiration = p.expiration;
    try {
      pc.ch.publish(p.exchange, p.key, p.body, props, (err: unknown) => this.confirmed(pc, p, err));
    } catch (err) {
      // A closing channel throws synchronously, before registering the callback.
      if (pc.closed || (err instanceof Error && err.name === 'IllegalOperationError')) this.resend(pc, p);
      else p.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private confirmed(pc: PoolChannel, p: Pending, err: unknown): void {
    if (err === null || err === undefined) {
      if (pc.returned.size !== 0 && pc.returned.delete(p.id ?? p.key)) {
        if (p.id !== undefined) return p.reject(undeliverable(p.exchange, p.key));
        p.owner.replyDropped(p.key); // the caller has gone: nothing to throw at
      }
      p.resolve();
      return;
    }
    // Our 'close' listener runs before amqplib fails the unconfirmed callbacks, so an
    // error on an open channel can only be a nack.
    if (!pc.closed) {
      p.reject(new Error(`RabbitMQ at ${this.conn.displayUrl} did not accept (nacked) the message to exchange "${p.exchange}" with routing key "${p.key}"`));
      return;
    }
    this.resend(pc, p);
  }

  /** The channel closed under `p`: decide whether `p` caused it, else send it again. */
  private resend(pc: PoolChannel, p: Pending): void {
    const cause = pc.closeError;
    if (cause !== null && cause.code === 404 && cause.message.includes(`no exchange '${p.exchange}'`)) {
      // Deleted under us (a fanout exchange goes with its last subscriber): no queue
      // can be bound to an exchange that does not exist.
      p.owner.forgetExchange(p.exchange);
      p.reject(undeliverable(p.exchange, p.key, true));
      return;
    }
    if (this.closed) {
      p.reject(new Error(`the connection to ${this.conn.displayUrl} was closed before RabbitMQ confirmed the message to exchange "${p.exchange}"`));
      return;
    }
    // Connection losses are retried until the connection is back; a broker refusal a few
    // times only, in case this very message is what it refuses.
    if (cause !== null && ++p.attempts > MAX_REFUSED_RESENDS) {
      p.reject(new Error(`cannot publish to exchange "${p.exchange}" with routing key "${p.key}" on ${this.conn.displayUrl}: ${cause.message}`, { cause }));
      return;
    }
    const i = this.next;
    this.next = i + 1 === this.size ? 0 : i + 1;
    const open = this.slots[i];
    if (open !== null) this.write(open, p);
    else this.writeWhenOpen(i, p);
  }

  private writeWhenOpen(i: number, p: Pending): void {
    this.channel(i).then(
      (pc) => this.write(pc, p),
      (err: Error) => p.reject(new Error(`cannot publish to exchange "${p.exchange}" on ${this.conn.displayUrl}: ${err.message}`, { cause: err })),
    );
  }

  private channel(i: number): Promise<PoolChannel> {
    const ready = this.slots[i];
    if (ready !== null) return Promise.resolve(ready);
    let opening = this.opening[i];
    if (opening === null) {
      opening = this.conn
        .openChannel(() => this.conn.model.createConfirmChannel())
        .then((ch) => {
          const pc: PoolChannel = { ch, returned: new Set(), closeError: null, closed: false };
          ch.on('error', (err: BrokerError) => {
            pc.closeError = err;
          });
          // Prepended so that `closed` is set before amqplib fails the unconfirmed
          // callbacks from its own 'close' listener (see confirmed()).
          ch.prependListener('close', () => {
            pc.closed = true;
            if (this.slots[i] === pc) this.slots[i] = null;
          });
          ch.on('return', (msg: Message) => {
            const id: unknown = msg.properties.messageId;
            pc.returned.add(typeof id === 'string' ? id : msg.fields.routingKey);
          });
          this.slots[i] = pc;
          this.opening[i] = null;
          if (this.closed) ch.close().catch(noop);
          return pc;
        });
      const settled = opening;
      settled.catch(() => {
        if (this.opening[i] === settled) this.opening[i] = null;
      });
      this.opening[i] = opening;
    }
    return opening;
  }
}

const RESOLVED = Promise.resolve();
let replySenderCount = 0;

/**
 * Calls and replies go on one plain channel, without publisher confirms: a call's
 * end-to-end acknowledgement is its reply (and its timeout), and a server could do
 * nothing with a reply's confirm but log it. Both are still mandatory, so a call to a
 * topic nobody serves comes back at once: its message id goes to the transports'
 * return listeners, and the waiting call fails with UndeliverableError. The write
 * buffer's back-pressure ('drain') is honoured, so a fast stream cannot flood memory.
 */
class DirectPublisher {
  readonly returnListeners = new Set<(id: string) => void>();
  /** Reply tag (`reply-sender-<n>`) -> the transport that sends replies under it. */
  readonly replySenders = new Map<string, AmqpTransport>();
  private ch: Channel | null = null;
  private opening: Promise<Channel> | null = null;
  private drained: Promise<void> | null = null;
  private closed = false;
  private readonly props = publishProperties();

  constructor(private readonly conn: SharedConnection) {}

  send(exchange: string, key: string, body: Buffer, id: string | undefined, expiration: string | undefined): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`the connection to ${this.conn.displayUrl} is closed`));
    const ch = this.ch;
    if (ch === null) return this.channel().then(() => this.send(exchange, key, body, id, expiration));
    if (this.drained !== null) return this.drained.then(() => this.send(exchange, key, body, id, expiration));
    const props = this.props;
    props.messageId = id;
    props.expiration = expiration;
    let ok: boolean;
    try {
      ok = ch.publish(exchange, key, body, props);
    } catch {
      // The channel is closing under us: send again on the next one.
      if (this.ch === ch) this.ch = null;
      return this.channel().then(() => this.send(exchange, key, body, id, expiration));
    }
    if (!ok) this.drained ??= new Promise<void>((resolve) => {
      const done = () => {
        ch.removeListener('drain', done);
        ch.removeListener('close', done);
        this.drained = null;
        resolve();
      };
      ch.once('drain', done);
      ch.once('close', done);
    });
    return RESOLVED;
  }

  close(): void {
    this.closed = true;
  }

  private channel(): Promise<Channel> {
    if (this.ch !== null) return Promise.resolve(this.ch);
    this.opening ??= this.conn
      .openChannel(() => this.conn.model.createChannel())
      .then((ch) => {
        ch.on('error', noop); // the close that follows is what matters
        ch.on('close', () => {
          if (this.ch === ch) this.ch = null;
        });
        ch.on('return', (msg: Message) => {
          const id: unknown = msg.properties.messageId;
          if (typeof id !== 'string') return;
          // Replies carry their sender's tag, so the drop is logged where it happened.
          const sender = this.replySenders.get(id);
          if (sender) sender.replyDropped(msg.fields.routingKey);
          else for (const listener of this.returnListeners) listener(id);
        });
        this.ch = ch;
        this.opening = null;
        if (this.closed) ch.close().catch(noop);
        return ch;
      })
      .finally(() => {
        this.opening = null;
      });
    return this.opening;
  }
}

function undeliverable(exchange: string, key: string, missingExchange = false): UndeliverableError {
  if (missingExchange) return new UndeliverableError(`exchange "${exchange}" does not exist, so no queue is bound for routing key "${key}" (no server is subscribed)`);
  if (key === '') return new UndeliverableError(`no queue is bound to fanout exchange "${exchange}": no server is subscribed to the fanout of its topic`);
  return new UndeliverableError(`no queue is bound for routing key "${key}" on exchange "${exchange}": no server is subscribed to that topic or host`);
}

// ---------------------------------------------------------------------------------------
// The transport

/** Declaration flags of one transport (oslo-wire.md sections 2-4). */
interface Flags {
  controlExchange: Options.AssertExchange;
  /** Topic and server queues. */
  sharedQueue: Options.AssertQueue;
  /** Fanout and reply queues: always classic, transient, with x-expires. */
  transientQueue: Options.AssertQueue;
}

class AmqpTransport implements Transport {
  readonly displayUrl: string;
  readonly flags: Flags;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly declared = new Set<string>();
  private declaredGeneration: number;
  private readonly declaring = new Map<string, Promise<void>>();
  private readonly subscriptions = new Set<AmqpSubscription>();
  private readonly returnListeners: Array<(id: string) => void> = [];
  private readonly replyTag = `reply-sender-${++replySenderCount}`;
  private replyStart: Promise<string> | null = null;
  private replyConsumer: ReplyConsumer | null = null;

  /** `rabbit_qos_prefetch_count` from the URL: the operator's setting beats the code's. */
  private readonly prefetchOverride: number;

  constructor(
    readonly conn: SharedConnection,
    config: AmqpConfig,
    readonly logger: Logger,
    durable: boolean,
    quorum: boolean,
  ) {
    this.displayUrl = config.displayUrl;
    this.declaredGeneration = conn.generation;
    conn.direct.replySenders.set(this.replyTag, this);
    const sharedArgs: Record<string, unknown> = {};
    if (quorum) {
      sharedArgs['x-queue-type'] = 'quorum';
      if (config.quorumDeliveryLimit > 0) sharedArgs['x-delivery-limit'] = config.quorumDeliveryLimit;
      if (config.quorumMaxMemoryLength > 0) sharedArgs['x-max-in-memory-length'] = config.quorumMaxMemoryLength;
      if (config.quorumMaxMemoryBytes > 0) sharedArgs['x-max-in-memory-bytes'] = config.quorumMaxMemoryBytes;
    }
    this.flags = {
      controlExchange: { durable: durable || quorum, autoDelete: config.autoDelete },
      sharedQueue: { durable: durable || quorum, autoDelete: config.autoDelete, exclusive: false, arguments: sharedArgs },
      transientQueue: { durable: false, autoDelete: false, exclusive: false, arguments: { 'x-expires': config.transientQueuesTtlMs } },
    };
    this.prefetchOverride = config.prefetchCount;
  }

  async subscribe(target: SubscribeTarget, options: SubscribeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    this.assertOpen();
    const prefetch = this.prefetchOverride > 0 ? this.prefetchOverride : options.prefetch;
    const sub = new AmqpSubscription(this, target, prefetch, onDelivery);
    this.subscriptions.add(sub);
    try {
      await sub.start();
    } catch (err) {
      this.subscriptions.delete(sub);
      throw err;
    }
    // The subscription declared the control exchange with our flags: no need to again.
    if (this.declaredGeneration === this.conn.generation) this.declared.add(target.exchange);
    return sub;
  }

  publish(target: PublishTarget, body: Buffer, options: PublishOptions): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`transport ${this.displayUrl} is closed`));
    let exchange: string;
    let key: string;
    if (target.fanout === true) {
      exchange = target.topic + '_fanout';
      key = '';
    } else {
      exchange = target.exchange;
      key = target.server ? target.topic + '.' + target.server : target.topic;
    }
    const ms = options.expirationMs;
    const expiration = ms === undefined ? undefined : String(ms > 0 ? Math.floor(ms) : 0);
    const send =
      options.confirm === false
        ? () => this.conn.direct.send(exchange, key, body, options.id, expiration)
        : () => this.conn.pool.send(exchange, key, body, options.id, expiration, this);
    if (this.declaredGeneration === this.conn.generation && this.declared.has(exchange)) return send();
    return this.declare(exchange, target.fanout === true).then(send);
  }

  onReturn(listener: (id: string) => void): void {
    this.conn.direct.returnListeners.add(listener);
    this.returnListeners.push(listener);
  }

  replyQueue(onReply: (body: Buffer) => void): Promise<string> {
    if (this.closed) return Promise.reject(new Error(`transport ${this.displayUrl} is closed`));
    if (this.replyStart === null) {
      // Later callers share this declaration; their `onReply` is not used (one queue, one consumer).
      const consumer = new ReplyConsumer(this, onReply);
      const start = consumer.start().then(
        () => {
          this.replyConsumer = consumer;
          return consumer.name;
        },
        (err: unknown) => {
          if (this.replyStart === start) this.replyStart = null;
          throw err;
        },
      );
      this.replyStart = start;
    }
    return this.replyStart;
  }

  reply(replyQueue: string, body: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`transport ${this.displayUrl} is closed`));
    return this.conn.direct.send('', replyQueue, body, this.replyTag, undefined);
  }

  close(): Promise<void> {
    if (this.closing === null) {
      this.closed = true;
      this.closing = (async () => {
        await Promise.all([...this.subscriptions].map((s) => s.close()));
        if (this.replyStart !== null) await this.replyStart.catch(noop);
        if (this.replyConsumer !== null) await this.replyConsumer.close();
        for (const l of this.returnListeners) this.conn.direct.returnListeners.delete(l);
        this.conn.direct.replySenders.delete(this.replyTag);
        await this.conn.release();
      })();
    }
    return this.closing;
  }

  // --- for the pool and the consumers

  replyDropped(queue: string): void {
    this.logger.warn(`reply dropped: reply queue ${queue} no longer exists (the caller has gone)`);
  }

  forgetExchange(exchange: string): void {
    this.declared.delete(exchange);
  }

  unregister(sub: AmqpSubscription): void {
    this.subscriptions.delete(sub);
  }

  /** Declare an exchange once per connection generation; concurrent callers share it. */
  private declare(exchange: string, fanout: boolean): Promise<void> {
    const generation = this.conn.generation;
    if (this.declaredGeneration !== generation) {
      this.declared.clear();
      this.declaring.clear();
      this.declaredGeneration = generation;
    }
    let pending = this.declaring.get(exchange);
    if (pending === undefined) {
      const type = fanout ? 'fanout' : 'topic';
      const flags = fanout ? FANOUT_EXCHANGE : this.flags.controlExchange;
      const started = this.conn.withAdmin((ch) => ch.assertExchange(exchange, type, flags)).then(
        () => {
          if (this.declaring.get(exchange) === started) this.declaring.delete(exchange);
          if (this.conn.generation === generation && this.declaredGeneration === generation) this.declared.add(exchange);
        },
        (err: unknown) => {
          if (this.declaring.get(exchange) === started) this.declaring.delete(exchange);
          throw declarationError(`exchange "${exchange}" (${type}, durable=${!!flags.durable}, auto_delete=${!!flags.autoDelete})`, this.displayUrl, err);
        },
      );
      this.declaring.set(exchange, started);
      pending = started;
    }
    return pending;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`transport ${this.displayUrl} is closed`);
  }
}

/** oslo's fanout exchange: never durable, always auto-delete, whatever the options. */
const FANOUT_EXCHANGE: Options.AssertExchange = { durable: false, autoDelete: true };

/**
 * Wait for operations queued on one channel. When the broker refuses one, the channel
 * closes and the ones queued behind it fail with a bland "Channel ended", possibly
 * first: report the refusal, which says what is wrong.
 */
async function allSettledOrRefusal(ops: unknown[]): Promise<void> {
  const results = await Promise.allSettled(ops);
  let first: unknown;
  for (const r of results) {
    if (r.status === 'fulfilled') continue;
    if (isBrokerRefusal(r.reason)) throw r.reason;
    if (first === undefined) first = r.reason;
  }
  if (first !== undefined) throw first;
}

function declarationError(what: string, displayUrl: string, err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  const hint =
    isBrokerRefusal(err) && err.code === 406
      ? '; it already exists with other flags: every peer must agree on amqp_durable_queues, amqp_auto_delete and rabbit_quorum_queue'
      : '';
  return new Error(`cannot declare ${what} on ${displayUrl}: ${message}${hint}`, { cause: err });
}

// ---------------------------------------------------------------------------------------
// Consuming

class AmqpDelivery implements Delivery {
  readonly body: Buffer;
  readonly redelivered: boolean;
  private settled = false;

  constructor(
    private readonly ch: Channel,
    private readonly msg: ConsumeMessage,
  ) {
    this.body = msg.content;
    this.redelivered = msg.fields.redelivered;
  }

  // A second settle would be a protocol error that closes the channel (406 unknown
  // delivery tag), and so would a settle on the channel that replaced a dead one;
  // settling on a dead channel throws. All three are no-ops: the broker has already
  // put an unsettled message back on its queue.
  ack(): void {
    if (this.settled) return;
    this.settled = true;
    try {
      this.ch.ack(this.msg);
    } catch {
      // channel gone
    }
  }

  reject(requeue: boolean): void {
    if (this.settled) return;
    this.settled = true;
    try {
      this.ch.reject(this.msg, requeue);
    } catch {
      // channel gone
    }
  }
}

const ACTIVE = 0;
const CANCELLED = 1;
const CLOSED = 2;

/**
 * A consumer whose channel can die under it (connection lost, queue deleted, channel
 * closed by the broker): it opens a new channel and runs `setup()` again, under the
 * same queue names, with backoff, until that works or the consumer is stopped.
 */
abstract class RecoveringConsumer {
  protected ch: Channel | null = null;
  /** Until start() returns, failures go to its caller rather than to the log. */
  protected started = false;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;

  constructor(
    protected readonly t: AmqpTransport,
    protected readonly label: string,
  ) {}

  /** False once cancelled or closed: no more channels, no more retries. */
  protected abstract get active(): boolean;

  /** Declare and consume on a channel from `openChannel()`. */
  protected abstract setup(): Promise<void>;

  /** A new channel that reports its own death, or null if we stopped meanwhile. */
  protected async openChannel(): Promise<Channel | null> {
    const conn = this.t.conn;
    const ch = await conn.openChannel(() => conn.model.createChannel());
    if (!this.active) {
      await ch.close().catch(noop);
      return null;
    }
    this.ch = ch;
    ch.on('error', (err: Error) => {
      if (this.active && this.started) this.t.logger.warn(`${this.label}: RabbitMQ closed the channel: ${err.message}`);
    });
    ch.on('close', () => this.channelClosed(ch));
    return ch;
  }

  protected channelClosed(ch: Channel): void {
    if (this.ch !== ch) return;
    this.ch = null;
    if (this.active) this.retry();
  }

  private retry(): void {
    if (this.timer !== null || !this.active) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.active) return;
      this.setup().then(
        () => {
          if (this.ch !== null) this.t.logger.info(`${this.label}: consuming again`);
          this.failures = 0;
        },
        (err: Error) => {
          if (!this.active) return;
          this.failures++;
          this.t.logger.warn(`${this.label}: could not consume again (attempt ${this.failures}): ${err.message}`);
          const ch = this.ch;
          if (ch !== null) {
            this.ch = null;
            ch.close().catch(noop);
          }
          this.retry();
        },
      );
    }, retryDelay(this.failures));
  }

  protected stopRetrying(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

class AmqpSubscription extends RecoveringConsumer implements Subscription {
  private state = ACTIVE;
  private tags: string[] = [];
  private closing: Promise<void> | null = null;
  private readonly fanoutExchange: string;
  /** Generated once: a reconnect re-declares the same queue, as oslo does. */
  private readonly fanoutQueue: string;

  constructor(
    t: AmqpTransport,
    private readonly target: SubscribeTarget,
    private readonly prefetch: number,
    private readonly onDelivery: (delivery: Delivery) => void,
  ) {
    super(t, `subscription to topic "${target.topic}" (server "${target.server}", exchange "${target.exchange}")`);
    this.fanoutExchange = `${target.topic}_fanout`;
    this.fanoutQueue = `${target.topic}_fanout_${uuidHex()}`;
  }

  protected get active(): boolean {
    return this.state === ACTIVE;
  }

  async start(): Promise<void> {
    try {
      await this.setup();
      this.started = true;
    } catch (err) {
      this.state = CLOSED;
      this.stopRetrying();
      const ch = this.ch;
      this.ch = null;
      if (ch) await ch.close().catch(noop);
      await this.t.conn.cleanup(`delete fanout queue ${this.fanoutQueue}`, (c) => c.deleteQueue(this.fanoutQueue));
      throw declarationError(`the topology of the ${this.label}`, this.t.displayUrl, err);
    }
  }

  cancel(): Promise<void> {
    if (this.state !== ACTIVE) return Promise.resolve();
    this.state = CANCELLED;
    this.stopRetrying();
    const ch = this.ch;
    const tags = this.tags;
    this.tags = [];
    if (ch === null) return Promise.resolve();
    return Promise.all(tags.map((tag) => ch.cancel(tag).catch(noop))).then(noop);
  }

  close(): Promise<void> {
    if (this.closing === null) {
      this.state = CLOSED;
      this.stopRetrying();
      this.closing = (async () => {
        const ch = this.ch;
        this.ch = null;
        this.tags = [];
        // Closing the channel hands every unsettled delivery back to its queue.
        if (ch !== null) await ch.close().catch(noop);
        await this.t.conn.cleanup(`delete fanout queue ${this.fanoutQueue}`, (c) => c.deleteQueue(this.fanoutQueue), this.t.logger);
        this.t.unregister(this);
      })();
    }
    return this.closing;
  }

  protected async setup(): Promise<void> {
    const ch = await this.openChannel();
    if (ch === null) return;

    const { exchange, topic, server } = this.target;
    const hostQueue = `${topic}.${server}`;
    const flags = this.t.flags;
    // amqplib queues these and sends them one after another; awaiting them together
    // saves only our own turns, the broker still answers each in order.
    await allSettledOrRefusal([
      ch.assertExchange(exchange, 'topic', flags.controlExchange),
      ch.assertQueue(topic, flags.sharedQueue),
      ch.bindQueue(topic, exchange, topic),
      ch.assertQueue(hostQueue, flags.sharedQueue),
      ch.bindQueue(hostQueue, exchange, hostQueue),
      ch.assertExchange(this.fanoutExchange, 'fanout', FANOUT_EXCHANGE),
      ch.assertQueue(this.fanoutQueue, flags.transientQueue),
      ch.bindQueue(this.fanoutQueue, this.fanoutExchange, topic),
      this.prefetch > 0 ? ch.prefetch(this.prefetch, false) : undefined,
    ]);

    const onMessage = (msg: ConsumeMessage | null): void => {
      if (msg === null) this.consumerCancelled(ch);
      else this.deliver(ch, msg);
    };
    for (const queue of [topic, hostQueue, this.fanoutQueue]) {
      if (this.state !== ACTIVE || this.ch !== ch) return;
      const { consumerTag } = await ch.consume(queue, onMessage, { noAck: false });
      if (this.state !== ACTIVE || this.ch !== ch) {
        await ch.cancel(consumerTag).catch(noop);
        return;
      }
      this.tags.push(consumerTag);
    }
  }

  private deliver(ch: Channel, msg: ConsumeMessage): void {
    try {
      this.onDelivery(new AmqpDelivery(ch, msg));
    } catch (err) {
      // Thrown into amqplib, this would close the channel and every consumer on it.
      this.t.logger.error(`${this.label}: the delivery handler threw: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The broker cancelled a consumer (its queue was deleted): start over on a new channel. */
  private consumerCancelled(ch: Channel): void {
    if (this.state !== ACTIVE || this.ch !== ch) return;
    this.t.logger.warn(`${this.label}: RabbitMQ cancelled a consumer (queue deleted?); declaring and consuming again`);
    ch.close().catch(noop); // channelClosed() takes it from there
  }

  protected override channelClosed(ch: Channel): void {
    if (this.ch === ch) this.tags = [];
    super.channelClosed(ch);
  }
}

/**
 * The transport's `reply_<uuid>` queue. Consumed with no-ack: oslo acks replies on
 * receipt anyway, so an explicit ack would buy no safety (the caller is the only one
 * who could use a reply, and if it dies its replies are worthless) while costing one
 * frame per reply and a prefetch window that would throttle replies under load.
 */
class ReplyConsumer extends RecoveringConsumer {
  readonly name: string;
  private closed = false;
  private readonly onReply: (body: Buffer) => void;

  constructor(t: AmqpTransport, onReply: (body: Buffer) => void) {
    const name = `reply_${uuidHex()}`;
    super(t, `reply queue ${name}`);
    this.name = name;
    this.onReply = onReply;
  }

  protected get active(): boolean {
    return !this.closed;
  }

  async start(): Promise<void> {
    try {
      await this.setup();
      this.started = true;
    } catch (err) {
      await this.close();
      throw declarationError(`reply queue ${this.name}`, this.t.displayUrl, err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopRetrying();
    const ch = this.ch;
    this.ch = null;
    if (ch !== null) await ch.close().catch(noop);
    // oslo leaves the queue for x-expires to collect in 30 minutes; nobody else reads it.
    await this.t.conn.cleanup(`delete reply queue ${this.name}`, (c) => c.deleteQueue(this.name), this.t.logger);
  }

  protected async setup(): Promise<void> {
    const ch = await this.openChannel();
    if (ch === null) return;
    await ch.assertQueue(this.name, this.t.flags.transientQueue);
    await ch.consume(
      this.name,
      (msg) => {
        if (msg === null) {
          // Deleted under us: declare it again under the same name, callers still use it.
          if (this.ch === ch && !this.closed) ch.close().catch(noop);
          return;
        }
        try {
          this.onReply(msg.content);
        } catch (err) {
          this.t.logger.error(`${this.label}: the reply handler threw: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
      { noAck: true },
    );
  }
}
