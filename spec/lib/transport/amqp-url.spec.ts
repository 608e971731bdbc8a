import { expect } from 'chai';
import { maskUrl, parseAmqpUrl } from '../../../lib/transport/amqp-url';

describe('parseAmqpUrl', () => {
  it('reads one host with credentials, port and vhost', () => {
    const c = parseAmqpUrl('rabbit://alice:s3cret@broker.example:5673/nova');
    expect(c.hosts).to.deep.equal([{ hostname: 'broker.example', port: 5673, username: 'alice', password: 's3cret' }]);
    expect(c.vhost).to.equal('nova');
    expect(c.displayUrl).to.equal('rabbit://alice:***@broker.example:5673/nova');
  });

  it('accepts amqp:// as well as rabbit://, case-insensitively', () => {
    expect(parseAmqpUrl('amqp://h/').hosts[0].hostname).to.equal('h');
    expect(parseAmqpUrl('RABBIT://h/').hosts[0].hostname).to.equal('h');
  });

  it('has oslo defaults: port 5672, guest/guest, heartbeat 60, flags off, 30 min x-expires', () => {
    const c = parseAmqpUrl('rabbit://localhost');
    expect(c.hosts).to.deep.equal([{ hostname: 'localhost', port: 5672, username: 'guest', password: 'guest' }]);
    expect(c.vhost).to.equal('/');
    expect(c.heartbeatSeconds).to.equal(60);
    expect(c.frameMax).to.equal(undefined);
    expect(c.durableQueues).to.equal(false);
    expect(c.autoDelete).to.equal(false);
    expect(c.quorumQueues).to.equal(false);
    expect(c.transientQueuesTtlMs).to.equal(1_800_000);
    expect(c.prefetchCount).to.equal(0);
  });

  describe('vhost (oslo rules)', () => {
    const cases: [string, string][] = [
      ['rabbit://h', '/'],
      ['rabbit://h:5672', '/'],
      ['rabbit://h:5672/', '/'],
      ['rabbit://h:5672//', '/'],
      ['rabbit://h/%2F', '/'],
      ['rabbit://h/nova', 'nova'],
      ['rabbit://h/a%2Fb', 'a/b'],
      ['rabbit://h/my%20vhost?heartbeat=10', 'my vhost'],
      ['rabbit://h:5672/?heartbeat=10', '/'],
    ];
    for (const [url, vhost] of cases) {
      it(`${url} -> ${JSON.stringify(vhost)}`, () => expect(parseAmqpUrl(url).vhost).to.equal(vhost));
    }
  });

  it('percent-decodes user and password', () => {
    const c = parseAmqpUrl('amqp://us%40er:p%40ss%3Aw%2Fo%25rd@h/');
    expect(c.hosts[0].username).to.equal('us@er');
    expect(c.hosts[0].password).to.equal('p@ss:w/o%rd');
    expect(c.displayUrl).to.equal('amqp://us%40er:***@h/');
  });

  it('takes a user without a password, and an empty password', () => {
    expect(parseAmqpUrl('amqp://bob@h/').hosts[0]).to.include({ username: 'bob', password: '' });
    expect(parseAmqpUrl('amqp://bob:@h/').hosts[0]).to.include({ username: 'bob', password: '' });
  });

  it('tolerates unescaped / ? # and @ inside a password', () => {
    const c = parseAmqpUrl('amqp://u:a/b?c#d@e@h:5673/v?heartbeat=5');
    expect(c.hosts[0]).to.deep.equal({ hostname: 'h', port: 5673, username: 'u', password: 'a/b?c#d@e' });
    expect(c.vhost).to.equal('v');
    expect(c.heartbeatSeconds).to.equal(5);
    expect(c.displayUrl).to.equal('amqp://u:***@h:5673/v?heartbeat=5');
  });

  describe('several hosts (failover, in the order written)', () => {
    it('keeps each host with its own credentials and port', () => {
      const c = parseAmqpUrl('rabbit://a:pa@h1:5672,b:pb@h2:5673,c:pc@h3/nova');
      expect(c.hosts).to.deep.equal([
        { hostname: 'h1', port: 5672, username: 'a', password: 'pa' },
        { hostname: 'h2', port: 5673, username: 'b', password: 'pb' },
        { hostname: 'h3', port: 5672, username: 'c', password: 'pc' },
      ]);
      expect(c.vhost).to.equal('nova');
      expect(c.displayUrl).to.equal('rabbit://a:***@h1:5672,b:***@h2:5673,c:***@h3/nova');
    });

    it('gives hosts without credentials those of the first host that has some', () => {
      const c = parseAmqpUrl('rabbit://h0,u:p@h1,h2:5679/');
      expect(c.hosts.map((h) => [h.hostname, h.port, h.username, h.password])).to.deep.equal([
        ['h0', 5672, 'u', 'p'],
        ['h1', 5672, 'u', 'p'],
        ['h2', 5679, 'u', 'p'],
      ]);
      expect(c.displayUrl).to.equal('rabbit://h0,u:***@h1,h2:5679/');
    });

    it('skips empty entries as oslo does', () => {
      expect(parseAmqpUrl('rabbit://h1,,h2,/').hosts.map((h) => h.hostname)).to.deep.equal(['h1', 'h2']);
    });
  });

  describe('IPv6', () => {
    it('reads [addr]:port and [addr]', () => {
      const c = parseAmqpUrl('amqp://u:p@[::1]:5673,[fe80::1%25eth0],[2001:db8::2]/');
      expect(c.hosts.map((h) => [h.hostname, h.port])).to.deep.equal([
        ['::1', 5673],
        ['fe80::1%25eth0', 5672],
        ['2001:db8::2', 5672],
      ]);
      expect(c.displayUrl).to.equal('amqp://u:***@[::1]:5673,[fe80::1%25eth0],[2001:db8::2]/');
    });

    it('rejects a missing ] and bare IPv6', () => {
      expect(() => parseAmqpUrl('amqp://[::1:5672/')).to.throw(TypeError, /closing \]/);
      expect(() => parseAmqpUrl('amqp://[::1]x/')).to.throw(TypeError, /:port after the IPv6/);
    });
  });

  describe('query options', () => {
    it('reads every supported key', () => {
      const c = parseAmqpUrl(
        'rabbit://h/?heartbeat_timeout_threshold=0&frame_max=8192&amqp_durable_queues=true&amqp_auto_delete=yes' +
          '&rabbit_transient_queues_ttl=60&rabbit_qos_prefetch_count=10',
      );
      expect(c).to.include({ heartbeatSeconds: 0, frameMax: 8192, durableQueues: true, autoDelete: true, transientQueuesTtlMs: 60_000, prefetchCount: 10 });
    });

    it('reads the Node spellings heartbeat and frameMax', () => {
      expect(parseAmqpUrl('amqp://h/?heartbeat=15&frameMax=131072')).to.include({ heartbeatSeconds: 15, frameMax: 131072 });
    });

    it('reads the quorum options, oslo typos included', () => {
      const c = parseAmqpUrl(
        'rabbit://h/?rabbit_quorum_queue=1&rabbit_quorum_delivery_limit=5&rabbit_quroum_max_memory_length=100&rabbit_quroum_max_memory_bytes=4096',
      );
      expect(c).to.include({ quorumQueues: true, quorumDeliveryLimit: 5, quorumMaxMemoryLength: 100, quorumMaxMemoryBytes: 4096 });
    });

    it("accepts oslo.config's boolean spellings", () => {
      for (const t of ['true', 'True', '1', 'on', 'yes', 'y', 't']) expect(parseAmqpUrl(`rabbit://h/?amqp_durable_queues=${t}`).durableQueues).to.equal(true);
      for (const f of ['false', 'FALSE', '0', 'off', 'no', 'n', 'f']) expect(parseAmqpUrl(`rabbit://h/?amqp_durable_queues=${f}`).durableQueues).to.equal(false);
    });

    it('accepts and ignores oslo client-tuning keys', () => {
      expect(() => parseAmqpUrl('rabbit://h/?rabbit_retry_interval=2&kombu_reconnect_delay=1&heartbeat_rate=3')).not.to.throw();
    });

    it('rejects an unknown key, naming it', () => {
      expect(() => parseAmqpUrl('rabbit://u:pw@h/?control_exchange=nova')).to.throw(TypeError, /unknown option "control_exchange"/);
      expect(() => parseAmqpUrl('rabbit://h/?bogus=1')).to.throw(TypeError, /unknown option "bogus"/);
    });

    it('rejects oslo options Courier does not implement instead of ignoring them', () => {
      expect(() => parseAmqpUrl('rabbit://h/?ssl=true')).to.throw(TypeError, /ssl is an oslo.messaging option that Courier does not support/);
      expect(() => parseAmqpUrl('rabbit://h/?rabbit_ha_queues=true')).to.throw(TypeError, /does not support/);
    });

    it('rejects bad values, repeated keys and an empty value', () => {
      expect(() => parseAmqpUrl('rabbit://h/?heartbeat=soon')).to.throw(TypeError, /heartbeat must be a whole number, got "soon"/);
      expect(() => parseAmqpUrl('rabbit://h/?amqp_durable_queues=maybe')).to.throw(TypeError, /must be true or false/);
      expect(() => parseAmqpUrl('rabbit://h/?frame_max=100')).to.throw(TypeError, /frame_max must be at least 4096/);
      expect(() => parseAmqpUrl('rabbit://h/?rabbit_transient_queues_ttl=0')).to.throw(TypeError, /at least 1/);
      expect(() => parseAmqpUrl('rabbit://h/?heartbeat=1&heartbeat=2')).to.throw(TypeError, /heartbeat is given twice/);
      expect(() => parseAmqpUrl('rabbit://h/?heartbeat=')).to.throw(TypeError, /heartbeat needs a value/);
    });

    it('rejects quorum together with auto-delete', () => {
      expect(() => parseAmqpUrl('rabbit://h/?rabbit_quorum_queue=true&amqp_auto_delete=true')).to.throw(TypeError, /cannot be combined/);
    });
  });

  describe('malformed URLs', () => {
    const cases: [string, RegExp][] = [
      ['', /expected rabbit:\/\/host\//],
      ['localhost:5672', /expected rabbit:\/\/host\//],
      ['http://h/', /scheme must be rabbit:\/\/ or amqp:\/\/, not http:\/\//],
      ['amqp:///', /no host given/],
      ['amqp://u:p@/', /host 1: no host name/],
      ['amqp://h:notaport/', /host 1: the port is not a number/],
      ['amqp://h1,h2:70000/', /host 2: the port is out of range/],
      ['amqp://h/v#frag', /fragment/],
      ['amqp://u:%zz@h/', /host 1: malformed percent-encoding in the password/],
      ['amqp://h/%zz', /malformed percent-encoding in the vhost/],
    ];
    for (const [url, message] of cases) {
      it(`${JSON.stringify(url)} -> TypeError ${message}`, () => expect(() => parseAmqpUrl(url)).to.throw(TypeError, message));
    }

    it('rejects a non-string', () => {
      expect(() => parseAmqpUrl(42 as unknown as string)).to.throw(TypeError, /must be a string/);
    });
  });

  describe('the password never shows in an error', () => {
    const secret = 'Sup3rS3cret';
    const urls = [
      `amqp://u:${secret}@h/?bogus=1`,
      `amqp://u:${secret}@h:port/`,
      `amqp://u:${secret}@h1,v:${secret}@h2:99999/`,
      `amqp://u:${secret}@[::1/`,
      `amqp://u:${secret}@h/?heartbeat=x`,
      `ftp://u:${secret}@h/`,
      // malformed: an unescaped ',' or '@' in the password
      `amqp://u:${secret.slice(0, 4)},${secret.slice(4)}@h/`,
      `amqp://u:${secret}@@h:x/`,
      `amqp://u:${secret}%@h/`,
    ];
    for (const url of urls) {
      it(url.split(secret).join('<secret>'), () => {
        let thrown: unknown;
        try {
          parseAmqpUrl(url);
        } catch (e) {
          thrown = e;
        }
        expect(thrown).to.be.instanceOf(TypeError);
        const message = (thrown as Error).message;
        expect(message).not.to.include(secret);
        expect(message).not.to.include(secret.slice(0, 4) + ',');
        expect(message).not.to.include(secret.slice(4));
        expect(message).to.include('***');
      });
    }
  });
});

describe('maskUrl', () => {
  const cases: [string, string][] = [
    ['amqp://guest:guest@127.0.0.1:5672/', 'amqp://guest:***@127.0.0.1:5672/'],
    ['rabbit://a:pa@h1,b:pb@h2:5673/nova?heartbeat=1', 'rabbit://a:***@h1,b:***@h2:5673/nova?heartbeat=1'],
    ['rabbit://h1:5672,u:p@h2/', 'rabbit://h1:5672,u:***@h2/'],
    ['amqp://h/', 'amqp://h/'],
    ['amqp://user@h/', 'amqp://user@h/'],
    ['amqp://u:a/b@h/v', 'amqp://u:***@h/v'],
    ['amqp://u:@h/', 'amqp://u:***@h/'],
    // ambiguous: hide everything before the last '@'
    ['amqp://u:pa,ss@h/', 'amqp://***@h/'],
    ['amqp://u:p@ss@h/', 'amqp://***@h/'],
    ['u:secret@host', 'u:***@host'],
  ];
  for (const [url, masked] of cases) {
    it(`${url} -> ${masked}`, () => expect(maskUrl(url)).to.equal(masked));
  }
});
