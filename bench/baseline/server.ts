/**
 * Baseline server process: a minimal hand-written amqplib RPC server. It acks each
 * request after handling it, and handles up to PREFETCH at once, like Courier's default.
 */
import { once } from 'node:events';
import * as amqp from 'amqplib';
import { ENV, streamItems } from '../common';
import { requireEnv, runServer } from '../worker';
import { CONNECT_OPTIONS, JSON_PROPS, PREFETCH, type Reply, type Request, fanoutExchange } from './wire';

void runServer('baseline server', async (state) => {
  const url = requireEnv(ENV.url);
  const topic = requireEnv(ENV.topic);
  const exchange = requireEnv(ENV.exchange);

  const conn = await amqp.connect(url, CONNECT_OPTIONS);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
  await ch.assertQueue(topic, { durable: false, autoDelete: false });
  await ch.bindQueue(topic, exchange, topic);
  await ch.assertExchange(fanoutExchange(topic), 'fanout', { durable: false, autoDelete: true });
  const { queue: fanoutQueue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
  await ch.bindQueue(fanoutQueue, fanoutExchange(topic), '');
  await ch.prefetch(PREFETCH);

  const reply = async (msg: amqp.ConsumeMessage, body: Reply): Promise<void> => {
    const { replyTo, correlationId } = msg.properties;
    if (!replyTo) return;
    const ok = ch.publish('', replyTo, Buffer.from(JSON.stringify(body)), { ...JSON_PROPS, correlationId });
    if (!ok) await once(ch, 'drain');
  };

  const dispatch = async (msg: amqp.ConsumeMessage, req: Request): Promise<void> => {
    const { args } = req;
    switch (req.method) {
      case 'echo':
        return reply(msg, { result: args.payload });
      case 'noop':
        return reply(msg, { result: null });
      case 'count':
        return reply(msg, { result: state.casts });
      case 'bump':
        state.bump();
        return reply(msg, { result: null });
      case 'waitCount':
        return reply(msg, { result: await state.waitCount(args.n as number) });
      case 'fanoutHit':
        state.fanoutHit(args.seq as number);
        return reply(msg, { result: null });
      case 'stream':
        for await (const item of streamItems(args.n as number)) await reply(msg, { item });
        return reply(msg, { end: true });
      default:
        throw new Error(`no such method ${String(req.method)}`);
    }
  };

  const onMessage = (msg: amqp.ConsumeMessage | null): void => {
    if (!msg) return;
    let req: Request;
    try {
      req = JSON.parse(msg.content.toString()) as Request;
    } catch {
      ch.reject(msg, false);
      return;
    }
    dispatch(msg, req)
      .catch((err: unknown) => reply(msg, { error: String(err) }))
      .finally(() => ch.ack(msg))
      .catch(() => {});
  };

  const tags = [
    (await ch.consume(topic, onMessage, { noAck: false })).consumerTag,
    (await ch.consume(fanoutQueue, onMessage, { noAck: false })).consumerTag,
  ];

  return {
    async stop() {
      for (const tag of tags) await ch.cancel(tag);
      await ch.close();
      await conn.close();
    },
  };
});
