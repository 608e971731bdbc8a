import { type Class, type RpcServiceOptions, defineService } from './metadata';
import { isVersion } from '../lib/protocol/version';

/**
 * Marks a class as the implementation of the RPC API on `topic`. `start()` discovers it
 * and consumes the topic's shared queue, its per-host queue and its fanout.
 */
export function RpcService(topic: string, options: RpcServiceOptions = {}): ClassDecorator {
  return (target) => {
    const cls = target as unknown as Class;
    const where = `@RpcService on ${cls.name}`;
    if (typeof topic !== 'string' || !/^[\w.:-]+$/.test(topic)) {
      throw new TypeError(`${where}: topic must be a non-empty string of letters, digits, '_', '-', '.', ':'; got ${JSON.stringify(topic)}`);
    }
    const version = options.version ?? '1.0';
    if (!isVersion(version)) throw new TypeError(`${where}: version must look like "1.3"; got ${JSON.stringify(version)}`);
    if (options.concurrency !== undefined && !(Number.isInteger(options.concurrency) && options.concurrency > 0)) {
      throw new TypeError(`${where}: concurrency must be a positive integer; got ${String(options.concurrency)}`);
    }
    if (options.namespace !== undefined && (typeof options.namespace !== 'string' || !options.namespace)) {
      throw new TypeError(`${where}: namespace must be a non-empty string`);
    }
    if (options.exchange !== undefined && (typeof options.exchange !== 'string' || !options.exchange)) {
      throw new TypeError(`${where}: exchange must be a non-empty string`);
    }
    defineService(cls, {
      topic,
      version,
      namespace: options.namespace,
      exchange: options.exchange,
      concurrency: options.concurrency,
    });
  };
}
