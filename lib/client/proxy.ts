/**
 * Builds the run-time object behind `RpcProxy<T>`: a memoised `Proxy` that turns a
 * method call into a keyword message for `RpcClient`. Everything it needs from the
 * class (topic, argument names, versions, result class) is read once, here.
 */
import { plainToInstance } from 'class-transformer';
import { type Class, type MethodMetadata, methodMetadata, serviceMetadata } from '../../decorators/metadata';
import { NoSuchMethodError } from '../errors';
import type { CallOptions, RpcClient } from './client';
import type { ProxyOptions, RpcProxy } from './types';

type Verb = 'call' | 'cast' | 'fanout' | 'multicall';

interface ProxyPlan {
  topic: string;
  namespace?: string;
  exchange?: string;
  major: number;
  methods: Map<string, MethodMetadata>;
}

export function createProxy<T>(client: RpcClient, cls: Class<T>, options: ProxyOptions = {}): RpcProxy<T> {
  if (typeof cls !== 'function') throw new TypeError('proxy() needs an @RpcService class');
  const service = serviceMetadata(cls);
  if (!service) throw new TypeError(`${cls.name} is not decorated with @RpcService, so it cannot be proxied`);
  const plan: ProxyPlan = {
    topic: service.topic,
    namespace: service.namespace,
    exchange: service.exchange,
    major: Number(service.version.split('.')[0]),
    methods: methodMetadata(cls),
  };
  return build<T>(client, plan, { ...options });
}

function build<T>(client: RpcClient, plan: ProxyPlan, opts: CallOptions): RpcProxy<T> {
  const calls = verbProxy(client, plan, opts, 'call');
  let casts: object | undefined;
  let fanouts: object | undefined;
  let streams: object | undefined;
  const extras: Record<string, unknown> = {
    $to: (host: string) => {
      if (typeof host !== 'string' || !host) throw new TypeError('$to(host) needs a host name');
      return build<T>(client, plan, { ...opts, server: host });
    },
    $with: (more: ProxyOptions) => build<T>(client, plan, { ...opts, ...more }),
  };
  return new Proxy(calls, {
    get(target, key) {
      if (key === '$cast') return (casts ??= verbProxy(client, plan, opts, 'cast'));
      if (key === '$fanout') return (fanouts ??= verbProxy(client, plan, { ...opts, server: undefined }, 'fanout'));
      if (key === '$multicall') return (streams ??= verbProxy(client, plan, opts, 'multicall'));
      if (typeof key === 'string' && Object.prototype.hasOwnProperty.call(extras, key)) return extras[key];
      return Reflect.get(target, key);
    },
  }) as unknown as RpcProxy<T>;
}

/** A memoised object of functions, one per method name asked for. */
function verbProxy(client: RpcClient, plan: ProxyPlan, opts: CallOptions, verb: Verb): object {
  const cache = new Map<string, (...args: unknown[]) => unknown>();
  return new Proxy(Object.create(null) as object, {
    get(_, key) {
      // Never look like a promise (`await proxy` must not call a remote `then`).
      if (typeof key !== 'string' || key === 'then') return undefined;
      let fn = cache.get(key);
      if (!fn) cache.set(key, (fn = invoker(client, plan, opts, verb, key)));
      return fn;
    },
  });
}

function invoker(client: RpcClient, plan: ProxyPlan, opts: CallOptions, verb: Verb, name: string): (...args: unknown[]) => unknown {
  const meta = plan.methods.get(name);
  const label = `${plan.topic}.${name}`;
  const fail = (err: Error) => (verb === 'multicall' ? failingIterable(err) : Promise.reject(err));
  if (!meta) return () => fail(new NoSuchMethodError(`${label} is not an @RpcMethod: not sent`));

  const version = opts.version ?? meta.since ?? `${plan.major}.0`;
  const callOpts: CallOptions = { ...opts, version, namespace: plan.namespace, exchange: plan.exchange ?? opts.exchange };
  const params = meta.params;
  const returns = meta.returns;

  return (...values: unknown[]) => {
    if (values.length > params.length) {
      return fail(new TypeError(`${label} takes ${params.length} argument(s), got ${values.length}`));
    }
    const args: Record<string, unknown> = {};
    for (let i = 0; i < values.length; i++) if (values[i] !== undefined) args[params[i].name] = values[i];
    const message = { method: name, args };
    switch (verb) {
      case 'cast':
        return client.cast(plan.topic, message, callOpts);
      case 'fanout':
        return client.fanoutCast(plan.topic, message, callOpts);
      case 'multicall':
        return returns ? mapIterable(client.multicall(plan.topic, message, callOpts), (v) => rehydrate(returns, v)) : client.multicall(plan.topic, message, callOpts);
      default: {
        const p = client.call(plan.topic, message, callOpts);
        if (!returns) return p;
        return p.then((v) => (meta.streams && Array.isArray(v) ? v.map((x) => rehydrate(returns, x)) : rehydrate(returns, v)));
      }
    }
  };
}

function rehydrate(cls: Class, value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  // Implicit conversion reads each property's design:type, so Date fields come back as Dates.
  return plainToInstance(cls as new () => object, value, { enableImplicitConversion: true });
}

function failingIterable(err: Error): AsyncIterable<never> {
  return {
    [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(err) }),
  };
}

async function* mapIterable<A, B>(source: AsyncIterable<A>, fn: (a: A) => B): AsyncGenerator<B> {
  for await (const a of source) yield fn(a);
}
