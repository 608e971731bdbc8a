/**
 * The one reader of decorator metadata on the server side: turns `@RpcService` classes
 * (or instances of them) into endpoints whose callable methods are exactly the
 * `@RpcMethod` members, each with its argument binder prepared once.
 */
import 'reflect-metadata';
import { type Class, type MethodMetadata, type ServiceMetadata, allDecoratedServices, methodMetadata, serviceMetadata } from '../../decorators/metadata';
import { type ArgumentBinder, argumentBinder } from './arguments';

export interface EndpointMethod {
  meta: MethodMetadata;
  invoke: (instance: object, args: unknown[]) => unknown;
  bind: ArgumentBinder;
}

export interface Endpoint {
  name: string;
  instance: object;
  service: ServiceMetadata & { exchange: string; concurrency: number };
  /** Own map lookups only: `__proto__`, `constructor` or `toString` can never match. */
  methods: ReadonlyMap<string, EndpointMethod>;
}

export const DEFAULT_CONCURRENCY = 64;

export function explore(services: ReadonlyArray<Class | object> | undefined, defaultExchange: string): Endpoint[] {
  const list = services ?? allDecoratedServices();
  if (!Array.isArray(list)) throw new TypeError('services must be an array of @RpcService classes or instances');
  const endpoints = list.map((s) => endpointFor(s, defaultExchange));
  const seen = new Map<string, string>();
  for (const e of endpoints) {
    const key = `${e.service.exchange}\u0000${e.service.topic}\u0000${e.service.namespace ?? ''}`;
    const other = seen.get(key);
    if (other) {
      const ns = e.service.namespace ? ` and namespace ${JSON.stringify(e.service.namespace)}` : '';
      throw new Error(`${other} and ${e.name} both serve topic ${JSON.stringify(e.service.topic)}${ns} on exchange ${JSON.stringify(e.service.exchange)}: one app can host one of them (give one a namespace to serve both)`);
    }
    seen.set(key, e.name);
  }
  return endpoints;
}

function endpointFor(service: Class | object, defaultExchange: string): Endpoint {
  const isClass = typeof service === 'function';
  const cls = (isClass ? service : (service as object).constructor) as Class;
  const meta = cls ? serviceMetadata(cls) : undefined;
  if (!meta) {
    const what = isClass ? `class ${cls.name}` : `an instance of ${cls?.name ?? 'an unknown class'}`;
    throw new TypeError(`${what} is not decorated with @RpcService`);
  }
  let instance: object;
  if (isClass) {
    try {
      instance = new (cls as unknown as new () => object)();
    } catch (err) {
      throw new TypeError(`cannot instantiate ${cls.name} with no arguments (${(err as Error).message}); pass an instance in services instead`);
    }
  } else {
    instance = service as object;
  }

  const methods = new Map<string, EndpointMethod>();
  for (const [name, m] of methodMetadata(cls)) {
    const fn = (cls.prototype as Record<string, unknown>)[name];
    if (typeof fn !== 'function') continue;
    const owner = ownerOf(cls.prototype as object, name);
    const types = (Reflect.getMetadata('design:paramtypes', owner, name) as unknown[] | undefined) ?? [];
    methods.set(name, {
      meta: m,
      invoke: (self, args) => (fn as (...a: unknown[]) => unknown).apply(self, args),
      bind: argumentBinder(m, types),
    });
  }
  return {
    name: cls.name,
    instance,
    service: { ...meta, exchange: meta.exchange ?? defaultExchange, concurrency: meta.concurrency ?? DEFAULT_CONCURRENCY },
    methods,
  };
}

function ownerOf(proto: object, name: string): object {
  for (let p: object | null = proto; p; p = Object.getPrototypeOf(p)) {
    if (Object.prototype.hasOwnProperty.call(p, name)) return p;
  }
  return proto;
}
