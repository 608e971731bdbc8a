/**
 * The static shape of a typed proxy, inferred from the service class itself: no code
 * generation. Types cannot see decorators, so every public method of the class is
 * listed; calling an undecorated one rejects at run time without sending anything.
 */
import type { CallOptions } from './client';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

/** Public method names of T (never `_`-prefixed ones: those are not callable). */
export type RpcMethodName<T> = {
  [K in keyof T]-?: K extends `_${string}` ? never : K extends string ? (T[K] extends AnyFunction ? K : never) : never;
}[keyof T];

type Params<F> = F extends (...args: infer P) => unknown ? P : never;
type Returned<F> = F extends (...args: never[]) => infer R ? R : never;

/** What a plain call resolves to: a generator's items are collected into an array. */
export type CallResult<R> =
  R extends AsyncGenerator<infer Y, unknown, unknown> ? Y[] : R extends Generator<infer Y, unknown, unknown> ? Y[] : Awaited<R>;

/** What a multicall yields: a generator's items, else the single result. */
export type StreamItem<R> =
  R extends AsyncGenerator<infer Y, unknown, unknown> ? Y : R extends Generator<infer Y, unknown, unknown> ? Y : Awaited<R>;

export interface ProxyOptions extends Omit<CallOptions, 'server' | 'namespace' | 'exchange'> {}

export type RpcCalls<T> = { [K in RpcMethodName<T>]: (...args: Params<T[K]>) => Promise<CallResult<Returned<T[K]>>> };
export type RpcCasts<T> = { [K in RpcMethodName<T>]: (...args: Params<T[K]>) => Promise<void> };
export type RpcStreams<T> = { [K in RpcMethodName<T>]: (...args: Params<T[K]>) => AsyncIterable<StreamItem<Returned<T[K]>>> };

/** A client for the service class T: call its methods as if they were local. */
export type RpcProxy<T> = RpcCalls<T> & {
  /** One-way calls: resolve once the broker holds the message. */
  readonly $cast: RpcCasts<T>;
  /** One-way calls to every instance of the service. */
  readonly $fanout: RpcCasts<T>;
  /** Streamed results: each item a generator method yields, as it is yielded. */
  readonly $multicall: RpcStreams<T>;
  /** The same proxy, aimed at one host (`<topic>.<host>`). */
  $to(host: string): RpcProxy<T>;
  /** The same proxy with some options replaced (timeout, context, version, ...). */
  $with(options: ProxyOptions): RpcProxy<T>;
};
