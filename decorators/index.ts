export { RpcService } from './rpc-service';
export { RpcMethod } from './rpc-method';
export { RpcError } from './rpc-error';
export type { RpcServiceOptions, RpcMethodOptions, Class } from './metadata';
