import 'reflect-metadata';
import { RpcService, RpcMethod, start, createClient } from '../index'; // 'courier-rpc' in your code

@RpcService('hello', { version: '1.3' })
export class HelloService {
  @RpcMethod()
  greet(name: string): string {
    return `hello, ${name}`;
  }

  @RpcMethod({ since: '1.2' })
  log(line: string, level = 'info'): void {
    console.log(`[${level}] ${line}`);
  }

  @RpcMethod()
  async *countdown(from: number): AsyncGenerator<number> {
    for (let i = from; i > 0; i--) yield i;
  }
}

export async function main(url = process.env.RPC_TRANSPORT_URL): Promise<void> {
  const app = await start({ url, host: 'hello-1' }); // hosts every @RpcService imported
  const client = await createClient({ url });
  const hello = client.proxy(HelloService, { timeout: 10_000 });

  console.log(await hello.greet('world')); // call: waits for the result
  await hello.$cast.log('one-way'); // cast: resolves once the broker holds it
  await hello.$fanout.log('to every instance', 'warn'); // fanout cast
  console.log(await hello.$to('hello-1').greet('host')); // call to one host
  for await (const n of hello.$multicall.countdown(3)) console.log(n); // streamed
  console.log(await client.call('hello', { method: 'greet', args: { name: 'kwargs' } })); // functional API

  await client.close();
  await app.stop(); // stop consuming, finish in-flight work, close
}

if (require.main === module) void main();
