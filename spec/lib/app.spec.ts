import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { RpcMethod, RpcService, createClient, start } from '../../index';
import { uniqueName } from '../support/transports';

describe('start()', () => {
  it('hosts every decorated class imported so far when services is omitted', async () => {
    const main = join(__dirname, 'fixtures', 'discovery-main.js');
    const { stdout } = await promisify(execFile)(process.execPath, [main], { timeout: 15_000 });
    expect(JSON.parse(stdout)).to.deep.equal(['a', 'b']);
  });

  it('hosts exactly the given services: instances as they are, classes instantiated', async () => {
    const a = uniqueName('given-a');
    const b = uniqueName('given-b');
    @RpcService(a)
    class A {
      constructor(readonly label = 'from-class') {}
      @RpcMethod() label_(): string {
        return this.label;
      }
    }
    @RpcService(b)
    class B {
      @RpcMethod() ping(): string {
        return 'pong';
      }
    }
    const app = await start({ services: [new A('from-instance')] });
    try {
      expect(await app.client.call(a, { method: 'label_' })).to.equal('from-instance');
      const err = await app.client.call(b, { method: 'ping' }).catch((e: Error) => e);
      expect(err).to.be.instanceOf(Error).and.have.property('name', 'UndeliverableError');
    } finally {
      await app.stop();
    }
    const app2 = await start({ services: [A, B] });
    try {
      expect(await app2.client.call(a, { method: 'label_' })).to.equal('from-class');
    } finally {
      await app2.stop();
    }
  });

  it('refuses two services with the same topic in one app', async () => {
    const topic = uniqueName('dup');
    @RpcService(topic)
    class One {}
    @RpcService(topic)
    class Two {}
    const err = await start({ services: [One, Two] }).catch((e: Error) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.match(/One and Two both serve topic/);
  });

  it('refuses classes that are not services, bad URLs and bad hosts with clear errors', async () => {
    class Plain {}
    expect((await start({ services: [Plain] }).catch((e: Error) => e) as Error).message).to.match(/Plain is not decorated with @RpcService/);
    expect((await start({ services: [], url: 'http://x' }).catch((e: Error) => e) as Error).message).to.match(/unsupported transport URL scheme "http:"/);
    expect((await start({ services: [], host: 'a b' }).catch((e: Error) => e) as Error).message).to.match(/host must be/);
    expect((await createClient({ url: 'memory://x' }).catch((e: Error) => e) as Error).message).to.match(/memory:\/\/ takes no host/);
  });

  it('checks every option before it starts serving: a bad timeout leaves nothing running', async () => {
    const topic = uniqueName('badopt');
    @RpcService(topic)
    class Svc {
      @RpcMethod() ping(): string {
        return 'pong';
      }
    }
    const err = await start({ services: [Svc], timeout: -1 }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/timeout must be a number of ms/);
    const client = await createClient({});
    try {
      const call = await client.call(topic, { method: 'ping' }).catch((e: Error) => e);
      expect(call).to.be.instanceOf(Error).and.have.property('name', 'UndeliverableError');
    } finally {
      await client.close();
    }
  });

  it('start({ services: [] }) is a client-only app', async () => {
    const app = await start({ services: [] });
    await app.stop();
    await app.stop(); // idempotent
  });

  it('limits a service to its concurrency and stop() lets in-flight handlers finish', async () => {
    const topic = uniqueName('conc');
    let running = 0;
    let peak = 0;
    let finished = 0;
    @RpcService(topic, { concurrency: 2 })
    class Slow {
      @RpcMethod() async work(ms: number): Promise<number> {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, ms));
        running--;
        finished++;
        return ms;
      }
    }
    const app = await start({ services: [Slow], host: 'c1' });
    const client = await createClient({});
    try {
      const calls = Array.from({ length: 8 }, () => client.call(topic, { method: 'work', args: { ms: 30 } }));
      // Casts too share the limit: they come through the same queues.
      await client.cast(topic, { method: 'work', args: { ms: 30 } });
      await Promise.all(calls);
      expect(peak).to.equal(2);

      const inFlight = client.call(topic, { method: 'work', args: { ms: 150 } });
      await new Promise((r) => setTimeout(r, 40));
      const before = finished;
      await app.stop();
      expect(finished).to.equal(before + 1);
      expect(await inFlight).to.equal(150);
    } finally {
      await client.close();
      await app.stop();
    }
  });

  it('logs a failing cast and goes on serving', async () => {
    const topic = uniqueName('castfail');
    const logged: string[] = [];
    const logger = { debug() {}, info() {}, warn: (m: string) => logged.push(m), error: (m: string) => logged.push(m) };
    @RpcService(topic)
    class Fails {
      @RpcMethod() boom(): void {
        throw new Error('cast went wrong');
      }
      @RpcMethod() ok(): string {
        return 'still here';
      }
    }
    const app = await start({ services: [Fails], logger });
    try {
      await app.client.cast(topic, { method: 'boom' });
      for (let i = 0; i < 100 && !logged.length; i++) await new Promise((r) => setTimeout(r, 5));
      expect(logged.join('\n')).to.match(/cast boom failed: Error: cast went wrong/);
      expect(await app.client.call(topic, { method: 'ok' })).to.equal('still here');
    } finally {
      await app.stop();
    }
  });
});
