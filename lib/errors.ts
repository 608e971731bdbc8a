/**
 * Courier's one error hierarchy, and the only place errors cross the wire:
 * `toWire` turns anything a handler threw into oslo's failure dict, `fromWire` turns a
 * failure (from Courier or from Python) back into the class the caller can test with
 * `instanceof`.
 */
import { registeredErrorClass } from '../decorators/metadata';

/** Base of every error Courier itself raises. */
export class CourierError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No reply (or, for a multicall, no next item) within the timeout. */
export class RpcTimeoutError extends CourierError {}

/** The method does not exist on the service, or is not an `@RpcMethod`. */
export class NoSuchMethodError extends CourierError {}

/** The server's API major differs from the requested one, or its minor is lower. */
export class UnsupportedVersionError extends CourierError {}

/** Refused locally, before sending: the method needs a version above the proxy's `versionCap`. */
export class VersionCapError extends CourierError {}

/** One constraint failure per property path, as class-validator reports them. */
export interface ValidationDetail {
  property: string;
  constraints: Record<string, string>;
}

/** The arguments did not satisfy the method's declared types; the method never ran. */
export class ValidationError extends CourierError {
  readonly details: ValidationDetail[];
  constructor(message: string, details: ValidationDetail[]) {
    super(message);
    this.details = details;
  }
}

/** No queue is bound for the target topic or host: the broker returned the message. */
export class UndeliverableError extends CourierError {}

/** Any other exception raised by the remote side. */
export class RemoteError extends CourierError {
  /** The remote class name: `err.name` of a JavaScript error, the class of a Python one. */
  readonly remoteName: string;
  /** The remote stack (or Python traceback) as text. */
  readonly remoteStack: string;
  constructor(remoteName: string, message: string, remoteStack = '') {
    super(message);
    this.remoteName = remoteName;
    this.remoteStack = remoteStack;
  }
}

/** oslo.messaging's failure dict (oslo-wire.md section 9). */
export interface WireFailure {
  class: string;
  module: string;
  message: string;
  tb: string[];
  args: unknown[];
  kwargs: Record<string, unknown>;
}

// Python callers recognise these two by class and module and rebuild their own
// dispatcher errors; Courier callers map them back to ours.
const OSLO_DISPATCHER = 'oslo_messaging.rpc.dispatcher';
const COURIER_MODULE = 'courier';
const BUILT_IN: Record<string, new (message: string) => CourierError> = {
  RpcTimeoutError,
  VersionCapError,
  UndeliverableError,
};

/** Turn anything a handler threw into the failure dict sent back to the caller. */
export function toWire(thrown: unknown): WireFailure {
  if (!(thrown instanceof Error)) {
    const message = `handler threw a non-Error value: ${describe(thrown)}`;
    return { class: 'Error', module: COURIER_MODULE, message, tb: [], args: [message], kwargs: {} };
  }
  const tb = stackLines(thrown);
  if (thrown instanceof NoSuchMethodError) {
    return { class: 'NoSuchMethod', module: OSLO_DISPATCHER, message: thrown.message, tb, args: [thrown.message], kwargs: {} };
  }
  if (thrown instanceof UnsupportedVersionError) {
    return { class: 'UnsupportedVersion', module: OSLO_DISPATCHER, message: thrown.message, tb, args: [thrown.message], kwargs: {} };
  }
  const name = thrown instanceof RemoteError ? thrown.remoteName : errorName(thrown);
  return { class: name, module: COURIER_MODULE, message: thrown.message, tb, args: [thrown.message], kwargs: ownProperties(thrown) };
}

/** Rebuild the caller-side error for a failure dict received from any peer. */
export function fromWire(failure: unknown): Error {
  const f = asFailure(failure);
  const tb = f.tb.join('');
  if (f.module === OSLO_DISPATCHER && f.class === 'NoSuchMethod') return withRemoteStack(new NoSuchMethodError(f.message), tb);
  if (f.module === OSLO_DISPATCHER && f.class === 'UnsupportedVersion') return withRemoteStack(new UnsupportedVersionError(f.message), tb);
  if (f.module === COURIER_MODULE) {
    if (f.class === 'ValidationError') {
      const details = Array.isArray(f.kwargs.details) ? (f.kwargs.details as ValidationDetail[]) : [];
      return withRemoteStack(new ValidationError(f.message, details), tb);
    }
    const builtIn = BUILT_IN[f.class];
    if (builtIn) return withRemoteStack(new builtIn(f.message), tb);
    const registered = registeredErrorClass(f.class);
    if (registered) return rebuild(registered, f, tb);
  }
  return new RemoteError(f.class, f.message, tb);
}

/** Parse the JSON string in a reply's `failure` field; a malformed one still yields an error. */
export function failureFromJson(text: unknown): Error {
  if (typeof text !== 'string') return fromWire(text);
  try {
    return fromWire(JSON.parse(text));
  } catch {
    return new RemoteError('MalformedFailure', `unparseable failure from the remote side: ${text.slice(0, 200)}`);
  }
}

function rebuild(cls: abstract new (...args: never[]) => Error, f: WireFailure, tb: string): Error {
  // Constructors may demand arguments we do not have: build the instance without
  // running one, then restore what the server sent.
  const err = Object.create(cls.prototype) as Error & Record<string, unknown>;
  Object.defineProperty(err, 'message', { value: f.message, writable: true, configurable: true });
  for (const [k, v] of Object.entries(f.kwargs)) {
    if (k !== '__proto__' && k !== 'constructor' && k !== 'prototype') err[k] = v;
  }
  Object.defineProperty(err, 'name', { value: f.class, writable: true, configurable: true });
  // No constructor ran, so nothing recorded where the caller received it.
  Error.captureStackTrace(err, fromWire);
  return withRemoteStack(err, tb);
}

function withRemoteStack<E extends Error>(err: E, tb: string): E {
  Object.defineProperty(err, 'remoteStack', { value: tb, enumerable: false, writable: true, configurable: true });
  return err;
}

function asFailure(value: unknown): WireFailure {
  const v = (value && typeof value === 'object' ? value : {}) as Partial<Record<keyof WireFailure, unknown>>;
  return {
    class: typeof v.class === 'string' ? v.class : 'Error',
    module: typeof v.module === 'string' ? v.module : '',
    message: typeof v.message === 'string' ? v.message : String(v.message ?? ''),
    tb: Array.isArray(v.tb) ? v.tb.filter((l): l is string => typeof l === 'string') : [],
    args: Array.isArray(v.args) ? v.args : [],
    kwargs: v.kwargs && typeof v.kwargs === 'object' && !Array.isArray(v.kwargs) ? (v.kwargs as Record<string, unknown>) : {},
  };
}

function errorName(err: Error): string {
  const ctorName = (err.constructor as { name?: unknown } | undefined)?.name;
  if (err.name && err.name !== 'Error') return err.name;
  return typeof ctorName === 'string' && ctorName ? ctorName : 'Error';
}

function stackLines(err: Error): string[] {
  return typeof err.stack === 'string' ? err.stack.split('\n').map((l) => `${l}\n`) : [];
}

function ownProperties(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(err)) {
    if (key === 'message' || key === 'stack' || key === 'name' || key === 'remoteStack') continue;
    const value = (err as unknown as Record<string, unknown>)[key];
    try {
      out[key] = JSON.parse(JSON.stringify(value) ?? 'null');
    } catch {
      out[key] = String(value);
    }
  }
  return out;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
