/**
 * `npm start`: two compute hosts and a scheduler in one process, then a client that
 * walks through every verb and failure the framework has. Runs on the in-memory broker
 * by default; set RPC_TRANSPORT_URL=amqp://guest:guest@127.0.0.1:5672/ to run the same
 * thing on RabbitMQ.
 */
import 'reflect-metadata';
import { NoSuchMethodError, RpcTimeoutError, ValidationError, createClient, start } from '../index';
import { ComputeService, QuotaExceeded } from './compute';
import { SchedulerService } from './scheduler';

export async function runDemo(url = process.env.RPC_TRANSPORT_URL ?? 'memory://', print: (line: string) => void = console.log): Promise<void> {
  const server = (host: string) => (line: string) => print(`      ${host.padEnd(11)}| ${line}`);
  const step = (title: string) => print(`\n${title}`);

  print(`Courier demo on ${url.replace(/:[^:@/]*@/, ':***@')}`);
  const computes = await Promise.all(
    ['compute-1', 'compute-2'].map((host) => start({ url, host, services: [new ComputeService(host, server(host))] })),
  );
  const schedulerClient = await createClient({ url });
  const scheduler = await start({
    url,
    host: 'scheduler-1',
    services: [new SchedulerService(schedulerClient.proxy(ComputeService), ['compute-1', 'compute-2'])],
  });
  const client = await createClient({ url, timeout: 5000 });
  print('started compute-1, compute-2 and scheduler-1');

  try {
    const compute = client.proxy(ComputeService);

    step('1. call, round robin over the shared topic queue "compute"');
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push(await compute.whoami());
    print(`   whoami() x6 answered by: ${seen.join(', ')}`);

    step('2. call with a validated DTO, through the scheduler, which calls one host with $to(host)');
    const vm = await client.proxy(SchedulerService).$with({ context: { user: 'alice' } }).schedule({ name: 'vm1', vcpus: 2 });
    print(`   schedule() -> ${vm.id} on ${vm.host}, createdAt is a ${vm.createdAt.constructor.name}, adminPass ${vm.adminPass === undefined ? 'stayed on the server' : 'LEAKED'}`);
    const direct = await compute.$to('compute-2').whoami();
    print(`   $to('compute-2').whoami() -> ${direct}`);

    step('3. fanout cast: every compute host gets it');
    await compute.$fanout.refreshCache();
    await pause(100);

    step('4. multicall: a generator streams its lines as they are produced');
    const t0 = Date.now();
    for await (const line of compute.$multicall.consoleLog(vm.id, 3)) print(`   +${String(Date.now() - t0).padStart(3)} ms  ${line}`);

    step('5. cast: one-way, resolves once the broker holds it');
    await compute.$to(vm.host).$cast.reboot(vm.id, true);
    await pause(100);
    print('   $cast.reboot() resolved');

    step('6. failures come back as classes you can catch');
    await expectError('timeout', () => compute.$with({ timeout: 300 }).migrate(vm.id, 1), RpcTimeoutError);
    await expectError('unknown method', () => client.call('compute', { method: 'selfDestruct' }), NoSuchMethodError);
    await expectError('invalid DTO', () => compute.create({ name: '', vcpus: 0 }), ValidationError);
    await expectError('registered error', () => compute.$to('compute-1').create({ name: 'huge', vcpus: 60 }), QuotaExceeded);
  } finally {
    // Servers first: a handler still running (the timed-out migrate) can then still reply.
    await scheduler.stop();
    await Promise.all(computes.map((a) => a.stop()));
    await schedulerClient.close();
    await client.close();
  }
  print('\nstopped cleanly');

  async function expectError(what: string, fn: () => Promise<unknown>, cls: new (...args: never[]) => Error): Promise<void> {
    try {
      await fn();
      print(`   ${what}: no error?!`);
    } catch (err) {
      const e = err as Error & { details?: unknown; limit?: unknown };
      const extra = e instanceof ValidationError ? ` details=${JSON.stringify(e.details.map((d) => d.property))}` : e instanceof QuotaExceeded ? ` limit=${String(e.limit)}` : '';
      print(`   ${what.padEnd(16)} -> ${e instanceof cls ? e.constructor.name : `UNEXPECTED ${(e as Error).name}`}: ${e.message.split('\n')[0]}${extra}`);
    }
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

if (require.main === module) {
  runDemo().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
