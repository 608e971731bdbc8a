/**
 * Type-level tests of the typed proxies. Part of the build: if any `@ts-expect-error`
 * line below stopped being an error, `tsc` (and so `npm test`) would fail.
 */
import type { RpcProxy } from '../../index';
import type { TypedCompute } from './fixtures/service';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | void {}

export async function proxyTypes(compute: RpcProxy<TypedCompute>): Promise<void> {
  // Calls keep the parameters and resolve to the awaited result.
  const created = await compute.create({ name: 'vm1', vcpus: 2 });
  assertType<Equal<typeof created, { id: string }>>();
  assertType<Equal<Awaited<ReturnType<typeof compute.reboot>>, void>>();

  // A generator called plainly resolves to the array of its items; $multicall streams them.
  assertType<Equal<Awaited<ReturnType<typeof compute.lines>>, string[]>>();
  assertType<Equal<ReturnType<typeof compute.$multicall.lines>, AsyncIterable<string>>>();
  assertType<Equal<ReturnType<typeof compute.$cast.reboot>, Promise<void>>>();
  assertType<Equal<ReturnType<typeof compute.$fanout.reboot>, Promise<void>>>();
  assertType<Equal<ReturnType<typeof compute.$to>, RpcProxy<TypedCompute>>>();
  assertType<Equal<ReturnType<typeof compute.$with>, RpcProxy<TypedCompute>>>();

  // @ts-expect-error: wrong argument type
  await compute.reboot('i-1', 'yes');
  // @ts-expect-error: missing argument
  await compute.reboot('i-1');
  // @ts-expect-error: unknown method
  await compute.destroy('i-1');
  // @ts-expect-error: too many arguments
  await compute.$cast.reboot('i-1', true, 'extra');
  // @ts-expect-error: wrong DTO shape
  await compute.$to('h1').create({ name: 'vm1' });
  // @ts-expect-error: `_` members are never callable, so the proxy does not offer them
  await compute._secret();
  // @ts-expect-error: options are checked too
  compute.$with({ timeout: '10s' });
}
