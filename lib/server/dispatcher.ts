/**
 * Picks the endpoint and method for a request the way oslo.messaging's dispatcher does
 * (oslo-wire.md section 10): the first endpoint whose namespace matches and whose
 * version serves the requested one; `NoSuchMethod` if one matched but lacks the method,
 * `UnsupportedVersion` if none matched.
 */
import { NoSuchMethodError, UnsupportedVersionError } from '../errors';
import { isCompatible, isLower, isVersion } from '../protocol/version';
import type { Request } from '../protocol/envelope';
import type { Endpoint, EndpointMethod } from './explorer';

export interface Target {
  endpoint: Endpoint;
  method: EndpointMethod;
}

export function resolve(endpoints: readonly Endpoint[], req: Request): Target {
  if (!isVersion(req.version)) {
    throw new UnsupportedVersionError(`Endpoint does not support RPC version ${req.version}: a version must look like "1.0". Attempted method: ${req.method}`);
  }
  let compatible = false;
  for (const endpoint of endpoints) {
    if ((endpoint.service.namespace ?? undefined) !== (req.namespace ?? undefined)) continue;
    if (!isCompatible(endpoint.service.version, req.version)) continue;
    compatible = true;
    const method = endpoint.methods.get(req.method);
    if (!method) continue;
    const since = method.meta.since;
    if (since && isLower(req.version, since)) {
      throw new UnsupportedVersionError(
        `Endpoint does not support RPC version ${req.version} for ${req.method}: the method needs ${since} (server is at ${endpoint.service.version}). Attempted method: ${req.method}`,
      );
    }
    return { endpoint, method };
  }
  if (compatible) throw new NoSuchMethodError(`Endpoint does not support RPC method ${req.method}`);
  const served = endpoints
    .filter((e) => (e.service.namespace ?? undefined) === (req.namespace ?? undefined))
    .map((e) => e.service.version);
  const have = served.length ? ` (server is at ${served.join(', ')})` : req.namespace ? ` (no endpoint in namespace ${JSON.stringify(req.namespace)})` : '';
  throw new UnsupportedVersionError(`Endpoint does not support RPC version ${req.version}${have}. Attempted method: ${req.method}`);
}
