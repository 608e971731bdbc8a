/** Picks a transport by URL scheme. */
import type { Logger } from '../logger';
import { createMemoryTransport } from './memory';
import type { Transport } from './transport';

export interface TransportOptions {
  logger: Logger;
}

export async function openTransport(url: string, options: TransportOptions): Promise<Transport> {
  if (typeof url !== 'string' || !url) throw new TypeError('url must be a non-empty string such as "memory://" or "amqp://user:pass@host:5672/"');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'memory':
      if (url !== 'memory://' && url !== 'memory:') throw new TypeError(`memory:// takes no host, path or options; got ${url}`);
      return createMemoryTransport(options.logger);
    case 'amqp':
    case 'amqps':
    case 'rabbit': {
      // Loaded on demand so a memory-only app never loads amqplib.
      const { createAmqpTransport } = await import('./amqp');
      return createAmqpTransport(url, { logger: options.logger });
    }
    default:
      throw new TypeError(`unsupported transport URL scheme ${scheme ? `"${scheme}:"` : '(none)'}: use memory://, amqp:// or rabbit://`);
  }
}
