/**
 * What the decorators record, and the only way to read it back. No I/O here:
 * `lib/server/explorer.ts` turns this metadata into a dispatch registry.
 */
import 'reflect-metadata';

/** A class constructor, as decorators and proxies see it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Class<T = unknown> = abstract new (...args: any[]) => T;

export interface RpcServiceOptions {
  /** The API version this class implements, `X.Y` (default `1.0`). */
  version?: string;
  /** Selects between services that share a topic (default: none). */
  namespace?: string;
  /** Control exchange for this service (default: the app's, `openstack`). */
  exchange?: string;
  /** Most messages this service handles at once in one app (default 64). */
  concurrency?: number;
}

export interface RpcMethodOptions {
  /** The API version that introduced this method: clients must send at least this. */
  since?: string;
  /** Argument names, when they cannot be read from the declaration. */
  params?: string[];
  /** A class the client rehydrates the result into. */
  returns?: Class;
}

export interface ServiceMetadata {
  topic: string;
  version: string;
  namespace?: string;
  exchange?: string;
  concurrency?: number;
}

export interface ParamMetadata {
  name: string;
  /** Declared with a default value, so the caller may leave it out. */
  optional: boolean;
}

export interface MethodMetadata {
  name: string;
  params: ParamMetadata[];
  since?: string;
  returns?: Class;
  /** A generator method: its items stream to `$multicall`. */
  streams: boolean;
}

const SERVICE = Symbol('courier:service');
const METHODS = Symbol('courier:methods');

const decoratedServices: Class[] = [];
const errorClasses = new Map<string, Class<Error>>();

export function defineService(target: Class, meta: ServiceMetadata): void {
  if (Reflect.hasOwnMetadata(SERVICE, target)) {
    throw new TypeError(`@RpcService applied twice to ${target.name}`);
  }
  Reflect.defineMetadata(SERVICE, meta, target);
  decoratedServices.push(target);
}

export function defineMethod(prototype: object, meta: MethodMetadata): void {
  let own = Reflect.getOwnMetadata(METHODS, prototype) as Map<string, MethodMetadata> | undefined;
  if (!own) {
    own = new Map();
    Reflect.defineMetadata(METHODS, own, prototype);
  }
  own.set(meta.name, meta);
}

export function registerErrorClass(cls: Class<Error>): void {
  const existing = errorClasses.get(cls.name);
  if (existing && existing !== cls) {
    throw new TypeError(`@RpcError: two error classes are named ${cls.name}; clients rebuild errors by class name, so names must be unique`);
  }
  errorClasses.set(cls.name, cls);
}

/** The `@RpcService` metadata of exactly this class, if it has any. */
export function serviceMetadata(target: Class): ServiceMetadata | undefined {
  return Reflect.getOwnMetadata(SERVICE, target) as ServiceMetadata | undefined;
}

/** Every `@RpcMethod` of a class, its decorated base classes included (nearest wins). */
export function methodMetadata(target: Class): Map<string, MethodMetadata> {
  const chain: object[] = [];
  for (let p: object | null = target.prototype as object; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) chain.push(p);
  const all = new Map<string, MethodMetadata>();
  for (const proto of chain.reverse()) {
    const own = Reflect.getOwnMetadata(METHODS, proto) as Map<string, MethodMetadata> | undefined;
    own?.forEach((meta, name) => all.set(name, meta));
  }
  return all;
}

/** Every class decorated with `@RpcService` in the modules imported so far. */
export function allDecoratedServices(): readonly Class[] {
  return decoratedServices;
}

export function registeredErrorClass(name: string): Class<Error> | undefined {
  return errorClasses.get(name);
}
