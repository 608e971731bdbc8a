/** The in-memory broker's own promises, beyond what the shared behaviour suites check. */
import { expect } from 'chai';
import { RpcMethod, RpcService, start } from '../../../index';
import { consoleLogger } from '../../../lib/logger';
import { openTransport } from '../../../lib/transport';
import type { Delivery } from '../../../lib/transport/transport';
import { sleep, uniqueName } from '../../support/transports';

const logger = consoleLogger('silent');

describe('memory:// broker', () => {
  it('delivers asynchronously, never inside publish()', async () => {
    const t = await openTransport('memory://', { logger });
    const topic = uniqueName('async');
    let delivered = false;
    const sub = await t.subscribe({ exchange: 'x', topic, server: 'h' }, { prefetch: 10 }, (d) => {
      delivered = true;
      d.ack();
    });
    const p = t.publish({ exchange: 'x', topic }, Buffer.from('{}'), { id: '1' });
    expect(delivered).to.equal(false);
    await p;
    await sleep(5);
    expect(delivered).to.equal(true);
    await sub.close();
    await t.close();
  });

  it('hands each consumer its own bytes: no object is shared between caller and handler', async () => {
    const topic = uniqueName('bytes');
    const sent = { nested: { list: [1, 2] } };
    let received: unknown;
    @RpcService(topic)
    class Echo {
      @RpcMethod() keep(value: unknown): unknown {
        received = value;
        (value as { nested: { list: number[] } }).nested.list.push(3);
        return value;
      }
    }
    const app = await start({ services: [Echo] });
    try {
      const back = await app.client.call<{ nested: { list: number[] } }>(topic, { method: 'keep', args: { value: sent } });
      expect(received).to.not.equal(sent);
      expect(back).to.not.equal(received);
      expect(sent.nested.list).to.deep.equal([1, 2]);
      expect(back.nested.list).to.deep.equal([1, 2, 3]);
    } finally {
      await app.stop();
    }
  });

  it('keeps consumers fed while a tight loop awaits cast after cast', async () => {
    const topic = uniqueName('starve');
    let handled = 0;
    @RpcService(topic)
    class Counter {
      @RpcMethod() bump(): void {
        handled++;
      }
    }
    const app = await start({ services: [Counter] });
    try {
      let sent = 0;
      const until = Date.now() + 200;
      while (Date.now() < until) {
        await app.client.cast(topic, { method: 'bump' });
        sent++;
      }
      expect(handled).to.be.greaterThan(sent / 2);
    } finally {
      await app.stop();
    }
  });

  it('requeues what a closed subscription left unacked, marked redelivered, to the next consumer', async () => {
    const t = await openTransport('memory://', { logger });
    const topic = uniqueName('requeue');
    const first: Delivery[] = [];
    const sub1 = await t.subscribe({ exchange: 'x', topic, server: 'a' }, { prefetch: 5 }, (d) => first.push(d));
    await t.publish({ exchange: 'x', topic }, Buffer.from('"m"'), { id: '1' });
    await sleep(5);
    expect(first).to.have.length(1);
    await sub1.close();
    const second: Delivery[] = [];
    const sub2 = await t.subscribe({ exchange: 'x', topic, server: 'b' }, { prefetch: 5 }, (d) => second.push(d));
    await sleep(5);
    expect(second).to.have.length(1);
    expect(second[0].redelivered).to.equal(true);
    expect(second[0].body.toString()).to.equal('"m"');
    second[0].ack();
    await sub2.close();
    await t.close();
  });

  it('drops a message whose expiration passed before any consumer took it', async () => {
    const t = await openTransport('memory://', { logger });
    const topic = uniqueName('ttl');
    const got: Delivery[] = [];
    const sub = await t.subscribe({ exchange: 'x', topic, server: 'a' }, { prefetch: 1 }, (d) => got.push(d));
    await t.publish({ exchange: 'x', topic }, Buffer.from('1'), { id: '1' });
    await t.publish({ exchange: 'x', topic }, Buffer.from('2'), { id: '2', expirationMs: 20 });
    await sleep(60); // prefetch 1: the second waits behind the unacked first, and expires
    got[0].ack();
    await sleep(10);
    expect(got).to.have.length(1);
    await sub.close();
    await t.close();
  });
});
