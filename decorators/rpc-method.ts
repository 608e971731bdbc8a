import { type RpcMethodOptions, defineMethod } from './metadata';
import { readParamNames } from './param-names';
import { isVersion } from '../lib/protocol/version';

/**
 * Makes a method callable over RPC. Its argument names are read here, once, from the
 * declaration (they are the keys of the wire's `args` dictionary); `params` overrides
 * them. Undecorated members are never callable.
 */
export function RpcMethod(options: RpcMethodOptions = {}): MethodDecorator {
  return (prototype, key, descriptor) => {
    const owner = (typeof prototype === 'function' ? prototype.name : prototype.constructor?.name) ?? '<anonymous>';
    const where = `@RpcMethod on ${owner}.${String(key)}`;
    if (typeof prototype === 'function') throw new TypeError(`${where}: static methods cannot be RPC methods`);
    if (typeof key !== 'string') throw new TypeError(`${where}: symbol-named methods cannot be called over RPC`);
    // oslo's dispatcher never calls `_` names; refusing here beats a method nobody can reach.
    if (key.startsWith('_')) throw new TypeError(`${where}: names starting with "_" are private and never callable`);
    const fn = descriptor.value;
    if (typeof fn !== 'function') throw new TypeError(`${where}: only methods can be decorated (not accessors or fields)`);
    if (options.since !== undefined && !isVersion(options.since)) {
      throw new TypeError(`${where}: since must look like "1.2"; got ${JSON.stringify(options.since)}`);
    }
    if (options.returns !== undefined && typeof options.returns !== 'function') {
      throw new TypeError(`${where}: returns must be a class`);
    }

    let params;
    if (options.params) {
      const bad = options.params.find((p) => typeof p !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(p));
      if (bad !== undefined) throw new TypeError(`${where}: params must be identifiers; got ${JSON.stringify(bad)}`);
      if (new Set(options.params).size !== options.params.length) throw new TypeError(`${where}: params has duplicate names`);
      const declared = readParamNames(fn);
      params = options.params.map((name, i) => ({
        name,
        optional: Array.isArray(declared) ? (declared[i]?.optional ?? false) : false,
      }));
    } else {
      const read = readParamNames(fn);
      if (typeof read === 'string') {
        throw new TypeError(`${where}: cannot read the argument names (${read}); name them with @RpcMethod({ params: [...] })`);
      }
      params = read;
    }

    const tag = Object.prototype.toString.call(fn);
    defineMethod(prototype, {
      name: key,
      params,
      since: options.since,
      returns: options.returns,
      streams: tag === '[object AsyncGeneratorFunction]' || tag === '[object GeneratorFunction]',
    });
  };
}
