/**
 * Courier: decorator-first RPC services for TypeScript, speaking oslo.messaging's
 * RabbitMQ protocol. This is the whole public API; nothing else is meant to be imported.
 */
import 'reflect-metadata';

// Declaring services
export { RpcService, RpcMethod, RpcError } from './decorators';
export type { RpcServiceOptions, RpcMethodOptions, Class } from './decorators';

// Running them
export { start, createClient } from './lib/app';
export type { App, StartOptions, ClientOptions } from './lib/app';
export type { Logger } from './lib/logger';

// Calling them
export type { RpcClient, RpcMessage, CallOptions } from './lib/client/client';
export type { RpcProxy, ProxyOptions, CallResult, StreamItem } from './lib/client/types';

// Context
export { currentContext } from './lib/context';

// Errors
export {
  CourierError,
  RpcTimeoutError,
  NoSuchMethodError,
  UnsupportedVersionError,
  VersionCapError,
  ValidationError,
  UndeliverableError,
  RemoteError,
} from './lib/errors';
export type { ValidationDetail } from './lib/errors';
