/**
 * Versions (api.md "Calling", "Precise points"; oslo-wire.md section 10): what the proxy
 * stamps, what a server accepts, versionCap, namespaces, and two versions of one service
 * side by side during a rolling upgrade.
 */
import 'reflect-metadata';
import { expect } from 'chai';
import { RpcMethod, RpcService, UndeliverableError, UnsupportedVersionError, VersionCapError, start, type App } from '../../index';
import { forEachTransport, uniqueName } from '../support/transports';
import { cleanTopic, rejectionOf, sniff } from './helpers';

forEachTransport('contract: versions', (t) => {
  describe('what the proxy stamps', () => {
    const topic = uniqueName('stamp');
    const handled: string[] = [];

    @RpcService(topic, { version: '1.3' })
    class Stamped {
      @RpcMethod() base(): void {}
      @RpcMethod({ since: '1.2' }) newer(): void {}
      @RpcMethod({ since: '1.3' }) newest(): void {}
    }

    @RpcService(topic, { version: '2.4', namespace: 'v2' })
    class StampedV2 {
      @RpcMethod() base(): void {}
      @RpcMethod({ since: '2.1' }) newer(): void {}
    }

    let app: App;
    let wire: Awaited<ReturnType<typeof sniff>>;
    before(async () => {
      // A client-only app; the sniffer stands in for the server and records each request.
      app = await start({ url: t.url, services: [] });
      wire = await sniff(t, topic);
    });
    after(async () => {
      await wire?.close();
      await app?.stop();
      await cleanTopic(t, topic, ['sniffer']);
    });

    it('a method without `since` is stamped with the service major and minor 0', async () => {
      await app.client.proxy(Stamped).$cast.base();
      expect((await wire.next()).version).to.equal('1.0');
      await app.client.proxy(StampedV2).$cast.base();
      const r = await wire.next();
      expect(r.version).to.equal('2.0');
      expect(r.namespace).to.equal('v2');
    });

    it("a method with `since` is stamped with it, so each message asks for no more than it needs", async () => {
      const p = app.client.proxy(Stamped);
      await p.$cast.newer();
      expect((await wire.next()).version).to.equal('1.2');
      await p.$cast.newest();
      expect((await wire.next()).version).to.equal('1.3');
      await app.client.proxy(StampedV2).$cast.newer();
      expect((await wire.next()).version).to.equal('2.1');
    });

    it('calls and fanout casts are stamped the same way', async () => {
      const p = app.client.proxy(Stamped, { timeout: 300 });
      void p.newer().catch(() => {}); // nobody answers: only the stamp matters
      const call = await wire.next();
      expect(call.version).to.equal('1.2');
      expect(call.msgId).to.be.a('string');
      await p.$fanout.newest();
      expect((await wire.next()).version).to.equal('1.3');
    });

    it('an explicit `version` option is stamped as given', async () => {
      await app.client.proxy(Stamped, { version: '1.1' }).$cast.base();
      expect((await wire.next()).version).to.equal('1.1');
      await app.client.proxy(Stamped).$with({ version: '1.3' }).$cast.newer();
      expect((await wire.next()).version).to.equal('1.3');
    });

    it('no namespace on the service means no namespace on the wire', async () => {
      await app.client.proxy(Stamped).$cast.base();
      expect((await wire.next()).namespace).to.equal(undefined);
    });
  });

  describe('what the server accepts', () => {
    const topic = uniqueName('accept');
    const host = 'accept-host';

    @RpcService(topic, { version: '1.3' })
    class Served {
      @RpcMethod() base(): string {
        return 'base';
      }
      @RpcMethod({ since: '1.2' }) newer(): string {
        return 'newer';
      }
    }

    let app: App;
    before(async () => {
      app = await start({ url: t.url, host, services: [Served] });
    });
    after(async () => {
      await app?.stop();
      await cleanTopic(t, topic, [host]);
    });

    const callAt = (version: string, method = 'base') => app.client.call(topic, { method }, { version, timeout: 1500 });

    it('the same major with an equal or lower minor', async () => {
      for (const v of ['1.0', '1.1', '1.2', '1.3', '1.3.0']) expect(await callAt(v), v).to.equal('base');
      expect(await callAt('1.2', 'newer')).to.equal('newer');
      expect(await app.client.proxy(Served).newer()).to.equal('newer');
    });

    it('no version on the wire means 1.0', async () => {
      expect(await app.client.call(topic, { method: 'base' }, { timeout: 1500 })).to.equal('base');
    });

    for (const [v, why] of [
      ['1.4', 'a higher minor'],
      ['2.0', 'another major'],
      ['0.9', 'a lower major'],
      ['1.3.1', 'a higher revision at the same minor'],
    ] as const) {
      it(`refuses ${why} (${v}) with UnsupportedVersionError naming both versions`, async () => {
        const err = await rejectionOf(callAt(v));
        expect(err, err.message).to.be.instanceOf(UnsupportedVersionError);
        expect(err.message).to.include(v).and.to.include('1.3');
      });
    }

    it("refuses a version below the method's `since`, naming both", async () => {
      const err = await rejectionOf(callAt('1.1', 'newer'));
      expect(err).to.be.instanceOf(UnsupportedVersionError);
      expect(err.message).to.include('1.1').and.to.include('1.2');
    });

    it('a proxy told to stamp an old version gets refused for a newer method', async () => {
      const err = await rejectionOf(app.client.proxy(Served, { version: '1.0', timeout: 1500 }).newer());
      expect(err).to.be.instanceOf(UnsupportedVersionError);
    });

    it('still serves correct calls after refusing', async () => {
      expect(await callAt('1.3', 'newer')).to.equal('newer');
    });
  });

  describe('versionCap', () => {
    const topic = uniqueName('cap');
    const host = 'cap-host';
    let ran = 0;

    @RpcService(topic, { version: '1.3' })
    class Capped {
      @RpcMethod() base(): string {
        ran++;
        return 'base';
      }
      @RpcMethod({ since: '1.2' }) newer(): string {
        ran++;
        return 'newer';
      }
    }

    @RpcService(uniqueName('nobody-serves'), { version: '1.3' })
    class Unserved {
      @RpcMethod({ since: '1.2' }) newer(): void {}
      @RpcMethod() base(): void {}
    }

    let app: App;
    before(async () => {
      app = await start({ url: t.url, host, services: [Capped] });
    });
    after(async () => {
      await app?.stop();
      await cleanTopic(t, topic, [host]);
    });

    it('refuses at once with VersionCapError naming both versions, and sends nothing', async () => {
      ran = 0;
      const t0 = Date.now();
      const err = await rejectionOf(app.client.proxy(Capped, { versionCap: '1.1', timeout: 1500 }).newer());
      expect(Date.now() - t0).to.be.below(100);
      expect(err).to.be.instanceOf(VersionCapError);
      expect(err.message).to.include('1.2').and.to.include('1.1');
      expect(ran).to.equal(0);
    });

    it('refuses before sending: no queue is needed to get VersionCapError (not UndeliverableError)', async () => {
      const p = app.client.proxy(Unserved, { versionCap: '1.0' });
      const err = await rejectionOf(p.newer());
      expect(err).to.be.instanceOf(VersionCapError);
      expect(err).to.not.be.instanceOf(UndeliverableError);
      // ...while a message under the cap does go out (and finds no queue).
      expect(await rejectionOf(p.base())).to.be.instanceOf(UndeliverableError);
    });

    it('applies to $cast, $fanout and $multicall too', async () => {
      ran = 0;
      const p = app.client.proxy(Capped, { versionCap: '1.1' });
      expect(await rejectionOf(p.$cast.newer())).to.be.instanceOf(VersionCapError);
      expect(await rejectionOf(p.$fanout.newer())).to.be.instanceOf(VersionCapError);
      const err = await rejectionOf(
        (async () => {
          for await (const _ of p.$multicall.newer()) void _;
        })(),
      );
      expect(err).to.be.instanceOf(VersionCapError);
      expect(ran).to.equal(0);
    });

    it('lets through what the cap can serve', async () => {
      const p = app.client.proxy(Capped, { versionCap: '1.2', timeout: 1500 });
      expect(await p.newer()).to.equal('newer');
      expect(await p.base()).to.equal('base');
      expect(await app.client.proxy(Capped, { versionCap: '1.1', timeout: 1500 }).base()).to.equal('base');
    });

    it('a cap of another major refuses everything', async () => {
      expect(await rejectionOf(app.client.proxy(Capped, { versionCap: '2.0' }).base())).to.be.instanceOf(VersionCapError);
    });

    it('the functional API honours versionCap too', async () => {
      const err = await rejectionOf(app.client.call(topic, { method: 'newer' }, { version: '1.2', versionCap: '1.1' }));
      expect(err).to.be.instanceOf(VersionCapError);
    });

    it('$with({ versionCap }) caps an existing proxy', async () => {
      const p = app.client.proxy(Capped, { timeout: 1500 });
      expect(await p.newer()).to.equal('newer');
      expect(await rejectionOf(p.$with({ versionCap: '1.1' }).newer())).to.be.instanceOf(VersionCapError);
    });
  });

  describe('namespaces', () => {
    const topic = uniqueName('ns');
    const host = 'ns-host';

    @RpcService(topic, { version: '1.0' })
    class Plain {
      @RpcMethod() who(): string {
        return 'plain';
      }
    }

    @RpcService(topic, { version: '1.0', namespace: 'alpha' })
    class Alpha {
      @RpcMethod() who(): string {
        return 'alpha';
      }
      @RpcMethod() onlyAlpha(): string {
        return 'only alpha';
      }
    }

    @RpcService(topic, { version: '2.0', namespace: 'beta' })
    class Beta {
      @RpcMethod() who(): string {
        return 'beta';
      }
    }

    let app: App;
    before(async () => {
      app = await start({ url: t.url, host, services: [Plain, Alpha, Beta] });
    });
    after(async () => {
      await app?.stop();
      await cleanTopic(t, topic, [host]);
    });

    it('select between services that share a topic', async () => {
      expect(await app.client.proxy(Plain).who()).to.equal('plain');
      expect(await app.client.proxy(Alpha).who()).to.equal('alpha');
      expect(await app.client.proxy(Beta).who()).to.equal('beta');
    });

    it('a method of one namespace is not reachable from another', async () => {
      const err = await rejectionOf(app.client.call(topic, { method: 'onlyAlpha' }, { timeout: 1500 }));
      expect(err.name).to.equal('NoSuchMethodError');
      expect(await app.client.call(topic, { method: 'onlyAlpha' }, { namespace: 'alpha', timeout: 1500 })).to.equal('only alpha');
    });

    it('an unknown namespace is UnsupportedVersionError', async () => {
      const err = await rejectionOf(app.client.call(topic, { method: 'who' }, { namespace: 'gamma', timeout: 1500 }));
      expect(err).to.be.instanceOf(UnsupportedVersionError);
      expect(err.message).to.include('gamma');
    });

    it('versions are checked per namespace', async () => {
      expect(await app.client.call(topic, { method: 'who' }, { namespace: 'beta', version: '2.0', timeout: 1500 })).to.equal('beta');
      const err = await rejectionOf(app.client.call(topic, { method: 'who' }, { namespace: 'beta', version: '1.0', timeout: 1500 }));
      expect(err).to.be.instanceOf(UnsupportedVersionError);
      expect(err.message).to.include('1.0').and.to.include('2.0');
    });
  });

  describe('a rolling upgrade: 1.1 and 1.2 of one service side by side', () => {
    const topic = uniqueName('rolling');
    const hosts = ['old-host', 'new-host'];

    /** What the old release's code declares. */
    @RpcService(topic, { version: '1.1' })
    class ComputeV1_1 {
      @RpcMethod() ping(): string {
        return 'pong from 1.1';
      }
      @RpcMethod({ since: '1.1' }) resize(id: string): string {
        return `1.1 resized ${id}`;
      }
    }

    /** The new release: one more method, 1.2. */
    @RpcService(topic, { version: '1.2' })
    class ComputeV1_2 {
      @RpcMethod() ping(): string {
        return 'pong from 1.2';
      }
      @RpcMethod({ since: '1.1' }) resize(id: string): string {
        return `1.2 resized ${id}`;
      }
      @RpcMethod({ since: '1.2' }) snapshot(id: string): string {
        return `snapshot of ${id}`;
      }
    }

    let oldApp: App;
    let newApp: App;
    before(async () => {
      oldApp = await start({ url: t.url, host: hosts[0], services: [ComputeV1_1] });
      newApp = await start({ url: t.url, host: hosts[1], services: [ComputeV1_2] });
    });
    after(async () => {
      await newApp?.stop();
      await oldApp?.stop();
      await cleanTopic(t, topic, hosts);
    });

    it('an old client works with the new server', async () => {
      const old = oldApp.client.proxy(ComputeV1_1, { timeout: 1500 }).$to(hosts[1]);
      expect(await old.ping()).to.equal('pong from 1.2');
      expect(await old.resize('i-1')).to.equal('1.2 resized i-1');
    });

    it('a new client capped to the old version works with the old server', async () => {
      const capped = newApp.client.proxy(ComputeV1_2, { versionCap: '1.1', timeout: 1500 });
      expect(await capped.$to(hosts[0]).ping()).to.equal('pong from 1.1');
      expect(await capped.$to(hosts[0]).resize('i-2')).to.equal('1.1 resized i-2');
      // ...and is stopped locally from asking the old fleet for what it cannot do.
      expect(await rejectionOf(capped.snapshot('i-2'))).to.be.instanceOf(VersionCapError);
    });

    it('an uncapped new client asking the old server for a new method gets UnsupportedVersionError naming both versions', async () => {
      const err = await rejectionOf(newApp.client.proxy(ComputeV1_2, { timeout: 1500 }).$to(hosts[0]).snapshot('i-3'));
      expect(err).to.be.instanceOf(UnsupportedVersionError);
      expect(err.message).to.include('1.2').and.to.include('1.1');
    });

    it('on the shared topic queue, capped and old clients are served whichever version answers', async () => {
      const capped = newApp.client.proxy(ComputeV1_2, { versionCap: '1.1', timeout: 1500 });
      const old = oldApp.client.proxy(ComputeV1_1, { timeout: 1500 });
      const answers = await Promise.all([...Array.from({ length: 6 }, () => capped.ping()), ...Array.from({ length: 6 }, () => old.resize('x'))]);
      expect(answers.filter((a) => a.startsWith('pong'))).to.have.length(6);
      expect(answers.filter((a) => a.includes('resized x'))).to.have.length(6);
      // Round robin over both hosts: both versions answered.
      expect(answers.some((a) => a.includes('1.1'))).to.equal(true);
      expect(answers.some((a) => a.includes('1.2'))).to.equal(true);
    });

    it('the new client uncapped gets the new method from the new server', async () => {
      expect(await newApp.client.proxy(ComputeV1_2, { timeout: 1500 }).$to(hosts[1]).snapshot('i-4')).to.equal('snapshot of i-4');
    });
  });
});
