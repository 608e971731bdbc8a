/**
 * Courier on memory:// : server app(s) and client in this one process (all memory://
 * apps of a process share one broker), so the figures are Courier's own cost.
 */
import { type App, createClient, start } from '../../index';
import { BenchState, ENV } from '../common';
import { LocalFanout, requireEnv, runClient } from '../worker';
import { BenchService, courierDriver } from './service';

runClient('courier memory', async () => {
  const url = requireEnv(ENV.url);
  const instances = Number(requireEnv(ENV.instances));
  const fanout = new LocalFanout(instances);
  const apps: App[] = [];
  for (let i = 0; i < instances; i++) {
    apps.push(
      await start({
        url,
        services: [new BenchService(new BenchState(fanout.hit))],
        host: `${requireEnv(ENV.host)}-${i}`,
        exchange: requireEnv(ENV.exchange),
      }),
    );
  }
  const client = await createClient({ url });
  return {
    driver: courierDriver(client),
    fanoutDone: fanout.done,
    async close() {
      await client.close();
      for (const app of apps) await app.stop();
    },
  };
});
