/**
 * One behaviour suite, every transport: `forEachTransport` runs a describe block on
 * `memory://` and on the RabbitMQ broker at RPC_TEST_AMQP_URL (default: the local one).
 */
import { randomBytes } from 'node:crypto';
import * as amqplib from 'amqplib';

export const AMQP_URL = process.env.RPC_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';

export interface TransportUnderTest {
  name: 'memory' | 'amqp';
  url: string;
}

export const TRANSPORTS: TransportUnderTest[] = [
  { name: 'memory', url: 'memory://' },
  { name: 'amqp', url: AMQP_URL },
];

export function forEachTransport(title: string, body: (t: TransportUnderTest) => void): void {
  for (const t of TRANSPORTS) describe(`${title} [${t.name}]`, () => body(t));
}

/** A topic (or exchange) name no other test or run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/**
 * Courier, like oslo, leaves the shared `<topic>` and `<topic>.<host>` queues behind on
 * stop; tests delete them (and their exchanges) so runs do not leak into each other.
 */
export async function deleteTopology(t: TransportUnderTest, names: { queues?: string[]; exchanges?: string[] }): Promise<void> {
  if (t.name !== 'amqp') return;
  const conn = await amqplib.connect(t.url);
  try {
    const ch = await conn.createChannel();
    for (const q of names.queues ?? []) await ch.deleteQueue(q);
    for (const x of names.exchanges ?? []) await ch.deleteExchange(x);
    await ch.close();
  } finally {
    await conn.close();
  }
}

/** The queues Courier declares for a topic served by `hosts` (fanout queues excluded: stop() deletes them). */
export function topicQueues(topic: string, hosts: string[]): string[] {
  return [topic, ...hosts.map((h) => `${topic}.${h}`)];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
