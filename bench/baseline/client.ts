/**
 * Baseline client process: calls on a plain channel (the reply is the acknowledgement),
 * casts and fanout casts on a confirm channel (each resolves on the broker's ack), one
 * exclusive reply queue consumed without acks, replies matched by correlation id.
 */
import * as amqp from 'amqplib';
import { AsyncQueue, ENV } from '../common';
import { requireEnv, runClient } from '../worker';
import type { Driver } from '../workloads';
import { CONNECT_OPTIONS, JSON_PROPS, type Reply, type Request, fanoutExchange } from './wire';

interface Pending {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

runClient('baseline client', async () => {
  const url = requireEnv(ENV.url);
  const topic = requireEnv(ENV.topic);
  const exchange = requireEnv(ENV.exchange);

  const conn = await amqp.connect(url, CONNECT_OPTIONS);
  const ch = await conn.createChannel();
  const confirms = await conn.createConfirmChannel();
  const { queue: replyQueue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });

  const calls = new Map<string, Pending>();
  const streams = new Map<string, AsyncQueue<unknown>>();
  let nextId = 0;

  await ch.consume(
    replyQueue,
    (msg) => {
      if (!msg) return;
      const id = msg.properties.correlationId as string;
      const reply = JSON.parse(msg.content.toString()) as Reply;
      const stream = streams.get(id);
      if (stream) {
        if ('item' in reply) stream.push(reply.item);
        else {
          streams.delete(id);
          if ('error' in reply) stream.fail(new Error(reply.error));
          else stream.end();
        }
        return;
      }
      const call = calls.get(id);
      if (!call) return;
      calls.delete(id);
      if ('error' in reply) call.reject(new Error(reply.error));
      else if ('result' in reply) call.resolve(reply.result);
    },
    { noAck: true },
  );

  const body = (method: Request['method'], args: Request['args']): Buffer =>
    Buffer.from(JSON.stringify({ method, args } satisfies Request));

  const send = (method: Request['method'], args: Request['args'], id: string): void => {
    ch.publish(exchange, topic, body(method, args), { ...JSON_PROPS, correlationId: id, replyTo: replyQueue });
  };

  const call = <T>(method: Request['method'], args: Request['args']): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = String(++nextId);
      calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      send(method, args, id);
    });

  const confirmed = (exchangeName: string, routingKey: string, content: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      confirms.publish(exchangeName, routingKey, content, JSON_PROPS, (err) => (err ? reject(err) : resolve()));
    });

  const driver: Driver = {
    echo: (payload) => call<string>('echo', { payload }),
    count: () => call<number>('count', {}),
    waitCount: (n) => call<number>('waitCount', { n }),
    bump: () => confirmed(exchange, topic, body('bump', {})),
    fanout: (seq) => confirmed(fanoutExchange(topic), '', body('fanoutHit', { seq })),
    stream: (n) => {
      const id = String(++nextId);
      const items = new AsyncQueue<unknown>();
      streams.set(id, items);
      send('stream', { n }, id);
      return items;
    },
  };

  return {
    driver,
    async close() {
      await confirms.close();
      await ch.close();
      await conn.close();
    },
  };
});
