/** Courier server process: one app hosting BenchService on RabbitMQ. */
import { start } from '../../index';
import { ENV } from '../common';
import { requireEnv, runServer } from '../worker';
import { BenchService } from './service';

void runServer('courier server', async (state) => {
  const app = await start({
    url: requireEnv(ENV.url),
    services: [new BenchService(state)],
    host: requireEnv(ENV.host),
    exchange: requireEnv(ENV.exchange),
  });
  return { stop: () => app.stop() };
});
