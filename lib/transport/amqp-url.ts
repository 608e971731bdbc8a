/**
 * Transport URLs for RabbitMQ, read the way oslo.messaging reads them (oslo-wire.md
 * section 1), so one `transport_url` string can configure Python and Courier peers alike:
 *
 *   rabbit://[user[:pass]@]host[:port][,[user[:pass]@]host2[:port]...]/[vhost][?key=value&...]
 *
 * - `amqp://` is accepted as a synonym of `rabbit://`.
 * - Hosts are tried in the order written (failover). A host written without credentials
 *   uses those of the first host that has some, else guest/guest.
 * - user, password and vhost are percent-decoded. An empty vhost (`h:5672/`, `h`) is
 *   the default vhost `/`; `h//` names `/` explicitly; `h/nova` is `nova`.
 * - Query keys are oslo's `[oslo_messaging_rabbit]` option names. A key oslo does not
 *   know is an error, as it is in oslo (NoSuchOptError); a key oslo knows but that would
 *   change the wire in a way Courier does not implement (TLS, HA queues, compression...)
 *   is an error too rather than being silently ignored. Pure client-side tuning keys of
 *   oslo (pool sizes, retry intervals) are accepted and ignored.
 *
 * Secrets: the password never appears in an error message or in `displayUrl`. Messages
 * quote the URL through `maskUrl`, which errs on the side of hiding too much when the
 * URL is malformed (e.g. an unescaped `,` or `@` in a password).
 *
 * Leniency beyond urlparse: the host list ends at the first `/`, `?` or `#` after the
 * LAST `@`, so a password may contain unescaped `/`, `?`, `#` or `@` (generated
 * passwords often do). The price: an `@` in the vhost or query must be percent-encoded.
 */

export interface AmqpHost {
  /** Without the brackets of an IPv6 literal. */
  hostname: string;
  port: number;
  username: string;
  password: string;
}

export interface AmqpConfig {
  /** Failover order: the first is tried first. Never empty. */
  hosts: AmqpHost[];
  /** Decoded; `/` is the default vhost. */
  vhost: string;
  /** AMQP heartbeat in seconds, 0 for none. oslo requests 60. */
  heartbeatSeconds: number;
  /** Largest AMQP frame to negotiate; undefined lets the client library choose. */
  frameMax?: number;
  /** `amqp_durable_queues`: durable control exchange and topic/server queues. */
  durableQueues: boolean;
  /** `amqp_auto_delete`: auto-delete control exchange and topic/server queues. */
  autoDelete: boolean;
  /** `rabbit_quorum_queue`: quorum topic/server queues and a durable control exchange. */
  quorumQueues: boolean;
  /** `rabbit_quorum_delivery_limit` (`x-delivery-limit`), 0 = not set. */
  quorumDeliveryLimit: number;
  /** `rabbit_quroum_max_memory_length` (oslo's spelling; `x-max-in-memory-length`), 0 = not set. */
  quorumMaxMemoryLength: number;
  /** `rabbit_quroum_max_memory_bytes` (oslo's spelling; `x-max-in-memory-bytes`), 0 = not set. */
  quorumMaxMemoryBytes: number;
  /** `rabbit_transient_queues_ttl` in ms: `x-expires` of fanout and reply queues. */
  transientQueuesTtlMs: number;
  /** `rabbit_qos_prefetch_count`, 0 = not set in the URL. */
  prefetchCount: number;
  /** The URL with every password replaced by `***`. */
  displayUrl: string;
}

const DEFAULT_PORT = 5672;
const DEFAULT_HEARTBEAT_S = 60;
const DEFAULT_TRANSIENT_TTL_S = 1800;

type Setter = (config: AmqpConfig, value: string, key: string) => void;

// Keys with their oslo names, plus the two aliases the rest of the Node world uses.
const OPTIONS: Record<string, Setter> = {
  heartbeat: (c, v, k) => (c.heartbeatSeconds = int(v, k, 0)),
  heartbeat_timeout_threshold: (c, v, k) => (c.heartbeatSeconds = int(v, k, 0)),
  frame_max: (c, v, k) => (c.frameMax = int(v, k, 4096)),
  frameMax: (c, v, k) => (c.frameMax = int(v, k, 4096)),
  amqp_durable_queues: (c, v, k) => (c.durableQueues = bool(v, k)),
  amqp_auto_delete: (c, v, k) => (c.autoDelete = bool(v, k)),
  rabbit_quorum_queue: (c, v, k) => (c.quorumQueues = bool(v, k)),
  rabbit_quorum_delivery_limit: (c, v, k) => (c.quorumDeliveryLimit = int(v, k, 0)),
  rabbit_quroum_max_memory_length: (c, v, k) => (c.quorumMaxMemoryLength = int(v, k, 0)),
  rabbit_quroum_max_memory_bytes: (c, v, k) => (c.quorumMaxMemoryBytes = int(v, k, 0)),
  rabbit_transient_queues_ttl: (c, v, k) => (c.transientQueuesTtlMs = int(v, k, 1) * 1000),
  rabbit_qos_prefetch_count: (c, v, k) => (c.prefetchCount = int(v, k, 0)),
};

// oslo options that only tune how a client retries or pools; they change nothing a
// peer can observe, so a URL shared with Python services may carry them.
const IGNORED = new Set([
  'heartbeat_rate',
  'kombu_reconnect_delay',
  'kombu_failover_strategy',
  'kombu_missing_consumer_retry_timeout',
  'rabbit_retry_interval',
  'rabbit_retry_backoff',
  'rabbit_interval_max',
  'rpc_conn_pool_size',
  'conn_pool_min_size',
  'conn_pool_ttl',
  'direct_mandatory_flag',
]);

// oslo options that change the connection or the declarations in ways Courier does not
// implement: ignoring them would connect in clear text or declare with other flags.
const UNSUPPORTED = new Set([
  'ssl',
  'ssl_ca_file',
  'ssl_cert_file',
  'ssl_key_file',
  'ssl_version',
  'ssl_enforce_fips_mode',
  'rabbit_login_method',
  'rabbit_ha_queues',
  'kombu_compression',
  'enable_cancel_on_failover',
  'rabbit_stream_fanout',
  'rabbit_transient_quorum_queue',
  'use_queue_manager',
]);

/** Parse an `amqp://` or `rabbit://` URL. Throws `TypeError` saying what is wrong. */
export function parseAmqpUrl(url: string): AmqpConfig {
  if (typeof url !== 'string') throw new TypeError(`AMQP URL must be a string, got ${typeof url}`);
  const fail = (what: string): never => {
    throw new TypeError(`invalid AMQP URL ${maskUrl(url)}: ${what}`);
  };

  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url);
  if (!scheme) fail('expected rabbit://host/ or amqp://host/');
  const protocol = scheme![1].toLowerCase();
  if (protocol !== 'rabbit' && protocol !== 'amqp') fail(`scheme must be rabbit:// or amqp://, not ${protocol}://`);

  const rest = url.slice(scheme![0].length);
  const authorityEnd = findAuthorityEnd(rest);
  const authority = rest.slice(0, authorityEnd);
  const tail = rest.slice(authorityEnd);

  const hashAt = tail.indexOf('#');
  if (hashAt >= 0) fail('a fragment (#...) is not allowed; percent-encode # as %23');
  const queryAt = tail.indexOf('?');
  const path = queryAt >= 0 ? tail.slice(0, queryAt) : tail;
  const query = queryAt >= 0 ? tail.slice(queryAt + 1) : '';

  const config: AmqpConfig = {
    hosts: [],
    vhost: '/',
    heartbeatSeconds: DEFAULT_HEARTBEAT_S,
    durableQueues: false,
    autoDelete: false,
    quorumQueues: false,
    quorumDeliveryLimit: 0,
    quorumMaxMemoryLength: 0,
    quorumMaxMemoryBytes: 0,
    transientQueuesTtlMs: DEFAULT_TRANSIENT_TTL_S * 1000,
    prefetchCount: 0,
    displayUrl: '',
  };

  // Hosts. oslo skips empty entries between commas, so do we.
  const written: { host: AmqpHost; hasCredentials: boolean; display: string }[] = [];
  const segments = authority.split(',');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (segment === '') continue;
    const n = i + 1;
    const at = segment.lastIndexOf('@');
    const hostport = at >= 0 ? segment.slice(at + 1) : segment;
    let username = '';
    let password = '';
    let display = hostport;
    if (at >= 0) {
      const userinfo = segment.slice(0, at);
      const colon = userinfo.indexOf(':');
      const rawUser = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
      username = decode(rawUser, () => fail(`host ${n}: malformed percent-encoding in the user name`));
      if (colon >= 0) {
        password = decode(userinfo.slice(colon + 1), () => fail(`host ${n}: malformed percent-encoding in the password`));
        display = `${rawUser}:***@${hostport}`;
      } else {
        display = `${rawUser}@${hostport}`;
      }
    }
    const { hostname, port } = parseHostPort(hostport, (what) => fail(`host ${n}: ${what}`));
    written.push({ host: { hostname, port, username, password }, hasCredentials: at >= 0, display });
  }
  if (written.length === 0) fail('no host given');

  const withCredentials = written.find((w) => w.hasCredentials);
  for (const w of written) {
    if (!w.hasCredentials) {
      w.host.username = withCredentials ? withCredentials.host.username : 'guest';
      w.host.password = withCredentials ? withCredentials.host.password : 'guest';
    }
    config.hosts.push(w.host);
  }

  // vhost: the path without its leading '/'; empty means the default vhost '/'.
  if (path !== '') {
    const vhost = decode(path.slice(1), () => fail('malformed percent-encoding in the vhost'));
    if (vhost !== '') config.vhost = vhost;
  }

  if (query !== '') {
    const seen = new Set<string>();
    for (const pair of query.split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const key = decode((eq >= 0 ? pair.slice(0, eq) : pair).replace(/\+/g, ' '), () => fail('malformed percent-encoding in a query key'));
      const value = eq >= 0 ? decode(pair.slice(eq + 1).replace(/\+/g, ' '), () => fail(`malformed percent-encoding in the value of ${key}`)) : '';
      if (seen.has(key)) fail(`option ${key} is given twice`);
      seen.add(key);
      if (IGNORED.has(key)) continue;
      if (UNSUPPORTED.has(key)) fail(`option ${key} is an oslo.messaging option that Courier does not support`);
      const set = Object.prototype.hasOwnProperty.call(OPTIONS, key) ? OPTIONS[key] : undefined;
      if (!set) fail(`unknown option ${JSON.stringify(key)} (known: ${Object.keys(OPTIONS).join(', ')})`);
      if (value === '') fail(`option ${key} needs a value`);
      try {
        set!(config, value, key);
      } catch (e) {
        fail((e as Error).message);
      }
    }
  }
  if (config.quorumQueues && config.autoDelete) fail('rabbit_quorum_queue cannot be combined with amqp_auto_delete (quorum queues cannot be auto-delete)');

  config.displayUrl = `${protocol}://${written.map((w) => w.display).join(',')}${tail}`;
  return config;
}

/**
 * The URL with every password replaced by `***`, for logs and error messages. Works on
 * anything, parseable or not; when it cannot tell where credentials end, it hides
 * everything before the last `@`.
 */
export function maskUrl(url: string): string {
  if (typeof url !== 'string') return String(url);
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.exec(url);
  const prefix = scheme ? scheme[0] : '';
  const rest = url.slice(prefix.length);
  if (rest.indexOf('@') < 0) return url;
  const end = findAuthorityEnd(rest);
  const authority = rest.slice(0, end);
  const tail = rest.slice(end);
  const masked = authority.replace(/(^|,)([^:,@]*):[^@,]*@/g, '$1$2:***@');
  return prefix + (credentialsHidden(masked) ? masked : `***@${masked.slice(masked.lastIndexOf('@') + 1)}`) + tail;
}

/** Where the host list ends: the first '/', '?' or '#' after the last '@' (see the module comment). */
function findAuthorityEnd(rest: string): number {
  const from = Math.max(0, rest.lastIndexOf('@'));
  for (let i = from; i < rest.length; i++) {
    const c = rest.charCodeAt(i);
    if (c === 0x2f /* / */ || c === 0x3f /* ? */ || c === 0x23 /* # */) return i;
  }
  return rest.length;
}

/**
 * Whether a masked host list shows no secret: every text before an '@' must read as
 * "host[:port],...,user[:***]". Anything else (a ',' or '@' inside a password) fails.
 */
function credentialsHidden(masked: string): boolean {
  const parts = masked.split('@');
  for (let i = 0; i < parts.length - 1; i++) {
    const segs = parts[i].split(',');
    // After an '@' the first segment is the previous host, so a userinfo needs its own segment.
    if (i > 0 && segs.length < 2) return false;
    for (let j = 0; j < segs.length - 1; j++) if (!HOSTPORT.test(segs[j])) return false;
    const userinfo = segs[segs.length - 1];
    if (userinfo.includes(':') && !/^[^:]*:\*\*\*$/.test(userinfo)) return false;
  }
  return true;
}

const HOSTPORT = /^(\[[^\]]*\]|[^:[\]]*)(:\d*)?$/;

function parseHostPort(text: string, fail: (what: string) => never): { hostname: string; port: number } {
  let hostname: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) fail('IPv6 address without its closing ]');
    hostname = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) fail('expected :port after the IPv6 address');
    if (after !== '') portText = after.slice(1);
    if (hostname === '') fail('empty IPv6 address');
  } else {
    const colon = text.indexOf(':');
    hostname = colon >= 0 ? text.slice(0, colon) : text;
    if (colon >= 0) portText = text.slice(colon + 1);
    if (hostname.includes(']') || hostname.includes('[')) fail('put an IPv6 address in [brackets]');
  }
  if (hostname === '') fail('no host name');
  let port = DEFAULT_PORT;
  if (portText !== undefined && portText !== '') {
    // The port text is not quoted: with an unescaped ',' in a password it would be part of it.
    if (!/^\d{1,5}$/.test(portText)) fail('the port is not a number');
    port = Number(portText);
    if (port < 1 || port > 65535) fail('the port is out of range 1-65535');
  }
  return { hostname, port };
}

function decode(text: string, fail: () => never): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return fail();
  }
}

function int(value: string, key: string, min: number): number {
  if (!/^\d+$/.test(value)) throw new Error(`option ${key} must be a whole number, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`option ${key} must be at least ${min}, got ${value}`);
  return n;
}

// oslo.config's boolean spellings.
const TRUE = new Set(['1', 't', 'true', 'on', 'y', 'yes']);
const FALSE = new Set(['0', 'f', 'false', 'off', 'n', 'no']);

function bool(value: string, key: string): boolean {
  const v = value.toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new Error(`option ${key} must be true or false, got ${JSON.stringify(value)}`);
}
