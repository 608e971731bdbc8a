/**
 * Shared by the contract suites: a logger that remembers what it was told, and a "raw
 * peer" that speaks bytes to a topic through the internal transport, so hostile or
 * hand-made messages take the same path on memory:// and on RabbitMQ.
 */
import { expect } from 'chai';
import type { Logger } from '../../lib/logger';
import { openTransport } from '../../lib/transport';
import type { Transport } from '../../lib/transport/transport';
import { type Reply, decodeReply, decodeRequest, newId, type Request } from '../../lib/protocol/envelope';
import { failureFromJson } from '../../lib/errors';
import { type TransportUnderTest, deleteTopology, topicQueues } from '../support/transports';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

export interface CapturingLogger extends Logger {
  readonly lines: LogLine[];
  /** Resolves with the first line (already logged or yet to come) that matches. */
  waitFor(match: RegExp, timeoutMs?: number): Promise<LogLine>;
  matching(match: RegExp): LogLine[];
}

export function capturingLogger(): CapturingLogger {
  const lines: LogLine[] = [];
  const waiters: Array<{ match: RegExp; resolve: (l: LogLine) => void }> = [];
  const at = (level: LogLine['level']) => (message: string) => {
    const line = { level, message };
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.match.test(message)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    matching: (match) => lines.filter((l) => match.test(l.message)),
    waitFor(match, timeoutMs = 1500) {
      const found = lines.find((l) => match.test(l.message));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = {
          match,
          resolve: (l: LogLine) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`nothing matching ${match} was logged within ${timeoutMs} ms; got:\n${lines.map((l) => `  ${l.level}: ${l.message}`).join('\n')}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
  };
}

/** A logger that throws nothing away but says nothing either. */
export const quietLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** oslo's envelope around a message given as JSON text (so `__proto__` keys survive as data). */
export function envelope(messageJson: string, version = '2.0'): Buffer {
  return Buffer.from(JSON.stringify({ 'oslo.version': version, 'oslo.message': messageJson }));
}

/**
 * Sends hand-made bodies to a topic and collects the replies addressed to its own reply
 * queue, through the same internal transport the framework uses.
 */
export class RawPeer {
  private readonly replies = new Map<string, Reply[]>();
  private readonly waiters = new Map<string, () => void>();
  replyQ!: string;

  private constructor(readonly transport: Transport) {}

  static async open(t: TransportUnderTest, logger: Logger = quietLogger): Promise<RawPeer> {
    const peer = new RawPeer(await openTransport(t.url, { logger }));
    peer.replyQ = await peer.transport.replyQueue((body) => peer.onReply(body));
    return peer;
  }

  private onReply(body: Buffer): void {
    const r = decodeReply(body);
    const list = this.replies.get(r.msgId) ?? [];
    list.push(r);
    this.replies.set(r.msgId, list);
    this.waiters.get(r.msgId)?.();
  }

  /** Every reply received so far for `msgId`. */
  repliesTo(msgId: string): Reply[] {
    return this.replies.get(msgId) ?? [];
  }

  async publish(topic: string, body: Buffer, opts: { exchange?: string; server?: string } = {}): Promise<void> {
    await this.transport.publish({ exchange: opts.exchange ?? 'openstack', topic, server: opts.server }, body, { id: newId() });
  }

  /**
   * Publish `build(msgId, replyQ)` and wait for the reply that ends the call. Resolves
   * with the reply (never throws for a failure reply: the test inspects it).
   */
  async call(topic: string, build: (msgId: string, replyQ: string) => Buffer, timeoutMs = 1500, opts: { exchange?: string } = {}): Promise<Reply> {
    const msgId = newId();
    const ended = new Promise<Reply>((resolve, reject) => {
      const check = () => {
        const end = this.repliesTo(msgId).find((r) => r.ending);
        if (end) {
          clearTimeout(timer);
          this.waiters.delete(msgId);
          resolve(end);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(msgId);
        reject(new Error(`no ending reply to ${msgId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(msgId, check);
    });
    await this.publish(topic, build(msgId, this.replyQ), opts);
    return ended;
  }

  /** A call given as a message object; `extra` JSON text is spliced in verbatim. */
  callMessage(topic: string, message: Record<string, unknown>, timeoutMs?: number): Promise<Reply> {
    return this.call(topic, (msgId, replyQ) => envelope(JSON.stringify({ ...message, _msg_id: msgId, _reply_q: replyQ, _unique_id: newId() })), timeoutMs);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

/** The error a failure reply stands for, as a Courier caller would see it. */
export function replyError(reply: Reply): Error {
  expect(reply.failure, `expected a failure reply, got result ${JSON.stringify(reply.result)}`).to.be.a('string');
  return failureFromJson(reply.failure);
}

/**
 * Subscribes to `topic` in place of a server and hands over every request as decoded,
 * so a test can see exactly what a client put on the wire.
 */
export async function sniff(t: TransportUnderTest, topic: string, host = 'sniffer'): Promise<{ requests: Request[]; raw: Buffer[]; next(timeoutMs?: number): Promise<Request>; close(): Promise<void> }> {
  const transport = await openTransport(t.url, { logger: quietLogger });
  const requests: Request[] = [];
  const raw: Buffer[] = [];
  let wake: (() => void) | undefined;
  const sub = await transport.subscribe({ exchange: 'openstack', topic, server: host }, { prefetch: 100 }, (d) => {
    raw.push(d.body);
    requests.push(decodeRequest(d.body));
    d.ack();
    wake?.();
  });
  let taken = 0;
  return {
    requests,
    raw,
    async next(timeoutMs = 1500) {
      const deadline = Date.now() + timeoutMs;
      while (requests.length <= taken) {
        if (Date.now() > deadline) throw new Error(`no request reached ${topic} within ${timeoutMs} ms`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 20);
        });
      }
      return requests[taken++];
    },
    async close() {
      await sub.cancel();
      await sub.close();
      await transport.close();
    },
  };
}

/** Delete what a suite left on RabbitMQ: the topic's shared and host queues, its fanout exchange. */
export async function cleanTopic(t: TransportUnderTest, topic: string, hosts: string[]): Promise<void> {
  await deleteTopology(t, { queues: topicQueues(topic, hosts), exchanges: [`${topic}_fanout`] });
}

/** Rejects with what `promise` rejected with; fails the test if it resolved. */
export async function rejectionOf(promise: Promise<unknown> | (() => Promise<unknown>)): Promise<Error & Record<string, unknown>> {
  try {
    const value = await (typeof promise === 'function' ? promise() : promise);
    expect.fail(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (err) {
    if ((err as Error)?.name === 'AssertionError') throw err;
    return err as Error & Record<string, unknown>;
  }
  throw new Error('unreachable');
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
