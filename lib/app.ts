/**
 * `start()` and `createClient()`: the two ways into Courier. `start` discovers the
 * services, wires their consumers on one transport and hands back a client that shares
 * it; `stop` undoes all of it, gracefully.
 */
import { hostname } from 'node:os';
import type { Class } from '../decorators/metadata';
import { RpcClient, DEFAULT_TIMEOUT, MAX_TIMER_MS } from './client/client';
import { type Logger, consoleLogger } from './logger';
import { explore } from './server/explorer';
import { RpcServer } from './server/server';
import { openTransport } from './transport';

export interface ClientOptions {
  /** `memory://` (default), `amqp://user:pass@host:5672/vhost` or oslo's `rabbit://`; comma-separated hosts fail over. */
  url?: string;
  /** Control exchange (default `openstack`; nova uses `nova`). */
  exchange?: string;
  /** Default call timeout in ms (60 000). */
  timeout?: number;
  logger?: Logger;
}

export interface StartOptions extends ClientOptions {
  /** Classes (instantiated with no arguments) or instances. Omitted: every `@RpcService` class imported so far. */
  services?: ReadonlyArray<Class | object>;
  /** This instance's name: its per-host queue is `<topic>.<host>` (default `os.hostname()`). */
  host?: string;
}

export interface App {
  /** The host name this app serves under. */
  readonly host: string;
  /** A client sharing the app's connection. Closed by `stop()`. */
  readonly client: RpcClient;
  /** Stop consuming, let in-flight handlers finish and reply, then close everything. */
  stop(): Promise<void>;
}

const DEFAULT_EXCHANGE = 'openstack';

/** Host the services and return the running app. */
export async function start(options: StartOptions = {}): Promise<App> {
  // Every option is checked before anything connects, so bad input leaks nothing.
  const settings = clientSettings(options);
  const { exchange, logger } = settings;
  const host = options.host ?? hostname();
  if (typeof host !== 'string' || !/^[\w.:-]+$/.test(host)) throw new TypeError(`host must be a non-empty name of letters, digits, '_', '-', '.', ':'; got ${JSON.stringify(host)}`);
  const endpoints = explore(options.services, exchange);
  const transport = await openTransport(options.url ?? 'memory://', { logger });
  const server = new RpcServer(transport, endpoints, { host, logger });
  try {
    await server.start();
  } catch (err) {
    await transport.close();
    throw err;
  }
  const client = new RpcClient(transport, settings);
  let stopped: Promise<void> | undefined;
  return {
    host,
    client,
    stop: () =>
      (stopped ??= (async () => {
        await server.stop();
        await client.close();
      })()),
  };
}

/** A client-only connection: no services, just proxies and the functional API. */
export async function createClient(options: ClientOptions = {}): Promise<RpcClient> {
  const settings = clientSettings(options);
  const transport = await openTransport(options.url ?? 'memory://', { logger: settings.logger });
  return new RpcClient(transport, settings);
}

function clientSettings(options: ClientOptions): { exchange: string; timeout: number; logger: Logger } {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT;
  if (!(typeof timeout === 'number' && timeout > 0 && timeout <= MAX_TIMER_MS)) throw new TypeError(`timeout must be a number of ms between 1 and ${MAX_TIMER_MS}, got ${String(timeout)}`);
  return { exchange: checkExchange(options.exchange), timeout, logger: options.logger ?? consoleLogger() };
}

function checkExchange(exchange: string | undefined): string {
  if (exchange === undefined) return DEFAULT_EXCHANGE;
  if (typeof exchange !== 'string' || !exchange) throw new TypeError('exchange must be a non-empty string');
  return exchange;
}
