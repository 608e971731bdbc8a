/**
 * `memory://`: an in-process broker with RabbitMQ's semantics for Courier's topology:
 * shared queues consumed round robin under a prefetch limit, exact-key bindings, fanout
 * exchanges, mandatory publishes that fail when nothing is bound, per-message expiry,
 * unacked messages requeued when their consumer goes away, and asynchronous delivery.
 * Messages are bytes, encoded and decoded by the same codec as on RabbitMQ, so a test
 * on this transport exercises everything but the socket.
 *
 * Every memory transport of a process shares one broker, so several apps (hosts) in one
 * process see each other, which is how tests and the demo run many instances.
 */
import { UndeliverableError } from '../errors';
import { newId } from '../protocol/envelope';
import type { Delivery, PublishOptions, PublishTarget, SubscribeOptions, SubscribeTarget, Subscription, Transport } from './transport';
import type { Logger } from '../logger';

interface StoredMessage {
  body: Buffer;
  expiresAt: number;
  redelivered: boolean;
}

interface Consumer {
  prefetch: number;
  unacked: number;
  active: boolean;
  deliver(message: StoredMessage, queue: MemoryQueue): void;
}

/** A FIFO with O(1) shift: Array#shift is linear on long arrays, and casts can pile up. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  unshift(item: T): void {
    if (this.head > 0) this.items[--this.head] = item;
    else this.items.unshift(item);
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

class MemoryQueue {
  readonly messages = new Fifo<StoredMessage>();
  readonly consumers: Consumer[] = [];
  private next = 0;
  private scheduled = false;

  constructor(readonly name: string) {}

  push(message: StoredMessage, front = false): void {
    if (front) this.messages.unshift(message);
    else this.messages.push(message);
    this.schedule();
  }

  /** Deliveries happen on a later turn of the event loop, as they would off a socket. */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.drain();
    });
  }

  private drain(): void {
    const now = Date.now();
    while (this.messages.length && this.consumers.length) {
      const consumer = this.pickConsumer();
      if (!consumer) return;
      const message = this.messages.shift()!;
      if (message.expiresAt <= now) continue;
      consumer.unacked++;
      consumer.deliver(message, this);
    }
  }

  /** Round robin over consumers that still have prefetch room. */
  private pickConsumer(): Consumer | undefined {
    const n = this.consumers.length;
    for (let i = 0; i < n; i++) {
      const c = this.consumers[(this.next + i) % n];
      if (c.active && c.unacked < c.prefetch) {
        this.next = (this.next + i + 1) % n;
        return c;
      }
    }
    return undefined;
  }
}

class MemoryBroker {
  readonly queues = new Map<string, MemoryQueue>();
  /** exchange -> routing key -> queue names; a fanout exchange keys everything under ''. */
  readonly bindings = new Map<string, Map<string, Set<string>>>();

  queue(name: string): MemoryQueue {
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = new MemoryQueue(name)));
    return q;
  }

  bind(exchange: string, key: string, queue: string): void {
    let byKey = this.bindings.get(exchange);
    if (!byKey) this.bindings.set(exchange, (byKey = new Map()));
    let set = byKey.get(key);
    if (!set) byKey.set(key, (set = new Set()));
    set.add(queue);
  }

  deleteQueue(name: string): void {
    this.queues.delete(name);
    for (const byKey of this.bindings.values()) for (const set of byKey.values()) set.delete(name);
  }

  route(exchange: string, key: string, fanout: boolean): MemoryQueue[] {
    const set = this.bindings.get(exchange)?.get(fanout ? '' : key);
    const out: MemoryQueue[] = [];
    set?.forEach((name) => {
      const q = this.queues.get(name);
      if (q) out.push(q);
    });
    return out;
  }
}

let broker = new MemoryBroker();

/** Tests only: forget every queue and binding of this process's memory broker. */
export function resetMemoryBroker(): void {
  broker = new MemoryBroker();
}

export function createMemoryTransport(logger: Logger): Transport {
  return new MemoryTransport(logger);
}

const FOREVER = Number.POSITIVE_INFINITY;

class MemoryTransport implements Transport {
  readonly displayUrl = 'memory://';
  private replyQueueName?: string;
  private replyConsumer?: Consumer;
  private closed = false;

  constructor(private readonly logger: Logger) {}

  async subscribe(target: SubscribeTarget, options: SubscribeOptions, onDelivery: (d: Delivery) => void): Promise<Subscription> {
    this.assertOpen();
    const b = broker;
    const fanoutQueue = `${target.topic}_fanout_${newId()}`;
    const names = [target.topic, `${target.topic}.${target.server}`, fanoutQueue];
    b.bind(target.exchange, names[0], names[0]);
    b.bind(target.exchange, names[1], names[1]);
    b.bind(`${target.topic}_fanout`, '', fanoutQueue);

    const outstanding = new Set<{ message: StoredMessage; queue: MemoryQueue; consumer: Consumer }>();
    const consumers = names.map((name) => {
      const queue = b.queue(name);
      const consumer: Consumer = {
        prefetch: options.prefetch,
        unacked: 0,
        active: true,
        deliver: (message, q) => {
          const entry = { message, queue: q, consumer };
          outstanding.add(entry);
          let settled = false;
          const settle = (requeue: boolean) => {
            if (settled || !outstanding.has(entry)) return; // settled twice, or the subscription already closed
            settled = true;
            outstanding.delete(entry);
            consumer.unacked--;
            if (requeue) q.push({ ...message, redelivered: true }, true);
            q.schedule();
          };
          onDelivery({ body: message.body, redelivered: message.redelivered, ack: () => settle(false), reject: settle });
        },
      };
      queue.consumers.push(consumer);
      queue.schedule();
      return { queue, consumer };
    });

    const cancel = async () => {
      for (const { queue, consumer } of consumers) {
        consumer.active = false;
        const i = queue.consumers.indexOf(consumer);
        if (i >= 0) queue.consumers.splice(i, 1);
      }
    };
    return {
      cancel,
      close: async () => {
        await cancel();
        // As when a channel closes: whatever was not settled goes back to its queue.
        for (const entry of outstanding) {
          entry.queue.push({ ...entry.message, redelivered: true }, true);
          entry.consumer.unacked--;
        }
        outstanding.clear();
        b.deleteQueue(fanoutQueue);
      },
    };
  }

  async publish(target: PublishTarget, body: Buffer, options: PublishOptions): Promise<void> {
    this.assertOpen();
    const exchange = target.fanout ? `${target.topic}_fanout` : target.exchange;
    const key = target.fanout ? '' : target.server ? `${target.topic}.${target.server}` : target.topic;
    const queues = broker.route(exchange, key, !!target.fanout);
    if (!queues.length) {
      throw new UndeliverableError(
        target.fanout
          ? `no server is subscribed to the fanout of topic ${JSON.stringify(target.topic)}`
          : `no queue is bound for ${JSON.stringify(key)} on exchange ${JSON.stringify(exchange)}`,
      );
    }
    const expiresAt = options.expirationMs === undefined ? FOREVER : Date.now() + options.expirationMs;
    for (const q of queues) q.push({ body, expiresAt, redelivered: false });
    // A broker's confirm arrives on a later turn; resolving in this one would let a tight
    // `await cast()` loop run on microtasks alone and starve every consumer.
    if (options.confirm !== false) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  onReturn(): void {
    // Routing is known synchronously here: an unroutable publish rejects at once.
  }

  async replyQueue(onReply: (body: Buffer) => void): Promise<string> {
    this.assertOpen();
    if (this.replyQueueName) return this.replyQueueName;
    const name = `reply_${newId()}`;
    const queue = broker.queue(name);
    const consumer: Consumer = {
      prefetch: FOREVER,
      unacked: 0,
      active: true,
      deliver: (message) => {
        consumer.unacked--; // replies are acked on receipt, as oslo's reply consumer does
        onReply(message.body);
      },
    };
    queue.consumers.push(consumer);
    this.replyQueueName = name;
    this.replyConsumer = consumer;
    return name;
  }

  async reply(replyQueue: string, body: Buffer): Promise<void> {
    const q = broker.queues.get(replyQueue);
    if (!q) {
      this.logger.info(`reply dropped: reply queue ${replyQueue} no longer exists (the caller has gone)`);
      return;
    }
    q.push({ body, expiresAt: FOREVER, redelivered: false });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.replyConsumer) this.replyConsumer.active = false;
    if (this.replyQueueName) broker.deleteQueue(this.replyQueueName);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('transport is closed');
  }
}
