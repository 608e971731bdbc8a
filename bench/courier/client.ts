/** Courier client process: a client-only connection and a typed proxy. */
import { createClient } from '../../index';
import { ENV } from '../common';
import { requireEnv, runClient } from '../worker';
import { courierDriver } from './service';

runClient('courier client', async () => {
  const client = await createClient({ url: requireEnv(ENV.url) });
  return { driver: courierDriver(client), close: () => client.close() };
});
