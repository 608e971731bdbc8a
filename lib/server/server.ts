/**
 * Runs the endpoints of one app: for every topic it subscribes the three consumers of
 * the rpc API (shared topic queue, per-host queue, fanout), decodes each message,
 * dispatches it under the caller's context and replies to calls.
 *
 * Delivery promise: a message is acked only after its handler has finished, so a
 * message that was received but not yet handled (stop(), a crash) goes back to its
 * queue instead of being lost. A call already answered is never answered twice: oslo's
 * duplicate window (the last 16 `_unique_id`s per subscription) drops repeats.
 */
import type { Logger } from '../logger';
import { newRequestId, runWithContext } from '../context';
import { toWire, CourierError } from '../errors';
import { type Request, DecodeError, decodeRequest, encodeReply, failureText } from '../protocol/envelope';
import type { Delivery, Subscription, Transport } from '../transport/transport';
import { resolve } from './dispatcher';
import type { Endpoint } from './explorer';
import { instanceToPlain } from 'class-transformer';

const DUPLICATE_WINDOW = 16;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The request could not be read; reported to callers that can still be reached. */
class MalformedMessage extends CourierError {}

export interface ServerOptions {
  host: string;
  logger: Logger;
}

export class RpcServer {
  private readonly topics: TopicServer[] = [];

  constructor(
    private readonly transport: Transport,
    endpoints: readonly Endpoint[],
    private readonly options: ServerOptions,
  ) {
    const groups = new Map<string, Endpoint[]>();
    for (const e of endpoints) {
      const key = `${e.service.exchange}\u0000${e.service.topic}`;
      const list = groups.get(key) ?? [];
      list.push(e);
      groups.set(key, list);
    }
    for (const group of groups.values()) this.topics.push(new TopicServer(transport, group, options));
  }

  async start(): Promise<void> {
    try {
      for (const t of this.topics) await t.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stop consuming, let in-flight handlers finish and reply, then release the queues. */
  async stop(): Promise<void> {
    await Promise.all(this.topics.map((t) => t.stop()));
  }
}

/** One topic's consumers and the endpoints (namespaces, versions) behind it. */
class TopicServer {
  private subscription?: Subscription;
  private readonly limit: number;
  private active = 0;
  private readonly waiting: Delivery[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly recentIds: string[] = [];
  private stopping = false;
  private readonly label: string;

  constructor(
    private readonly transport: Transport,
    private readonly endpoints: Endpoint[],
    private readonly options: ServerOptions,
  ) {
    // Endpoints sharing a topic share its consumers, so they share the largest limit.
    this.limit = Math.max(...endpoints.map((e) => e.service.concurrency));
    this.label = `topic ${endpoints[0].service.topic}`;
  }

  async start(): Promise<void> {
    const { exchange, topic } = this.endpoints[0].service;
    this.subscription = await this.transport.subscribe(
      { exchange, topic, server: this.options.host },
      { prefetch: this.limit },
      (d) => this.onDelivery(d),
    );
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.subscription?.cancel();
    // Received but not started: hand back so another instance can take them.
    for (const d of this.waiting.splice(0)) d.reject(true);
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
    await this.subscription?.close();
  }

  private onDelivery(d: Delivery): void {
    if (this.stopping) return d.reject(true);
    // The three consumers each have `limit` prefetch; this keeps the total at `limit`.
    if (this.active >= this.limit) {
      this.waiting.push(d);
      return;
    }
    this.run(d);
  }

  private run(d: Delivery): void {
    this.active++;
    const p = this.handle(d).finally(() => {
      this.inFlight.delete(p);
      this.active--;
      const next = this.waiting.shift();
      if (next) this.run(next);
    });
    this.inFlight.add(p);
  }

  private async handle(d: Delivery): Promise<void> {
    let req: Request;
    try {
      req = decodeRequest(d.body);
    } catch (err) {
      const e = err instanceof DecodeError ? err : new DecodeError(String(err));
      this.options.logger.warn(`${this.label}: rejected a message: ${e.message}`);
      if (e.replyTo) await this.sendReply(e.replyTo.replyQ, e.replyTo.msgId, null, failureText(toWire(new MalformedMessage(e.message))));
      d.reject(false); // as oslo does: undecodable input is dropped, never requeued forever
      return;
    }
    // Courier callers always send one; an oslo or hand-made peer may not.
    if (typeof req.context.request_id !== 'string' || !req.context.request_id) req.context.request_id = newRequestId();
    if (req.uniqueId !== undefined && this.isDuplicate(req.uniqueId)) {
      this.options.logger.warn(`${this.label}: dropped a duplicate of message ${req.uniqueId} (method ${req.method})`);
      d.ack();
      return;
    }
    try {
      if (req.msgId !== undefined && req.replyQ !== undefined) await this.answer(req, req.replyQ, req.msgId);
      else await this.execute(req);
    } finally {
      d.ack();
    }
  }

  /** A cast: nobody to tell, so failures are logged and the server goes on. */
  private async execute(req: Request): Promise<void> {
    try {
      const result = await runWithContext(req.context, () => this.invoke(req));
      if (isAsyncIterable(result)) await runWithContext(req.context, () => drain(result));
    } catch (err) {
      this.options.logger.error(`${this.label}: cast ${req.method} failed: ${describeError(err)}`);
    }
  }

  private async answer(req: Request, replyQ: string, msgId: string): Promise<void> {
    const stopHeartbeat = this.startHeartbeat(req, replyQ, msgId);
    try {
      let result = await runWithContext(req.context, () => this.invoke(req));
      if (isAsyncIterable(result)) {
        if (req.stream) {
          let seq = 0;
          // The context must reach the generator's body too, which runs on each next().
          const it = result[Symbol.asyncIterator]();
          for (;;) {
            const step = await runWithContext(req.context, () => it.next());
            if (step.done) break;
            await this.sendReply(replyQ, msgId, toPlain(step.value), null, false, seq++);
          }
          await this.sendReply(replyQ, msgId, null, null, true, seq);
          return;
        }
        result = await runWithContext(req.context, () => collect(result as AsyncIterable<unknown>));
      }
      await this.sendReply(replyQ, msgId, toPlain(result), null);
    } catch (err) {
      await this.sendReply(replyQ, msgId, null, failureText(toWire(err)));
    } finally {
      stopHeartbeat();
    }
  }

  private async invoke(req: Request): Promise<unknown> {
    const { endpoint, method } = resolve(this.endpoints, req);
    const args = await method.bind(req.args);
    const result = method.invoke(endpoint.instance, args);
    if (method.meta.streams) return toAsyncIterable(result);
    return await result;
  }

  /** oslo's call monitor: only a caller that set `_timeout` gets heartbeats (section 8). */
  private startHeartbeat(req: Request, replyQ: string, msgId: string): () => void {
    const t = req.monitorTimeout;
    if (t === null || t < 2) return noop;
    // Above 2^31-1 ms Node fires every 1 ms instead: a huge `_timeout` must not flood the caller.
    const every = Math.min(Math.floor(t / 2) * 1000, MAX_TIMER_MS);
    const timer = setInterval(() => {
      void this.sendReply(replyQ, msgId, null, null, false);
    }, every);
    return () => clearInterval(timer);
  }

  private async sendReply(replyQ: string, msgId: string, result: unknown, failure: string | null, ending = true, seq?: number): Promise<void> {
    let body: Buffer;
    try {
      body = encodeReply({ msgId, result, failure, ending, seq });
    } catch (err) {
      body = encodeReply({ msgId, result: null, failure: failureText(toWire(new MalformedMessage(`the result cannot be sent as JSON: ${describeError(err)}`))), ending, seq });
    }
    try {
      await this.transport.reply(replyQ, body);
    } catch (err) {
      this.options.logger.error(`${this.label}: could not send a reply to ${replyQ}: ${describeError(err)}`);
    }
  }

  private isDuplicate(id: string): boolean {
    if (this.recentIds.includes(id)) return true;
    this.recentIds.push(id);
    if (this.recentIds.length > DUPLICATE_WINDOW) this.recentIds.shift();
    return false;
  }
}

function toPlain(value: unknown): unknown {
  // Plain JSON out: class-transformer honours @Exclude/@Expose, so secrets stay here.
  return typeof value === 'object' && value !== null ? instanceToPlain(value) : value;
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

async function* fromSync(it: Iterable<unknown>): AsyncGenerator<unknown> {
  yield* it;
}

function toAsyncIterable(v: unknown): AsyncIterable<unknown> {
  if (isAsyncIterable(v)) return v;
  if (typeof v === 'object' && v !== null && typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function') return fromSync(v as Iterable<unknown>);
  throw new TypeError('a generator method returned something that is not iterable');
}

async function collect(it: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const v of it) out.push(toPlain(v));
  return out;
}

async function drain(it: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of it) void _;
}

function describeError(err: unknown): string {
  // toWire's text for a thrown string or undefined says what happened, not just "undefined".
  return err instanceof Error ? `${err.name}: ${err.message}` : toWire(err).message;
}

function noop(): void {}
