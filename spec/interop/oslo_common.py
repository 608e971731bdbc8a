"""Helpers shared by the oslo.messaging interop scripts (oslo_server.py,
oslo_client.py, oslo_cleanup.py, oslo_probe.py, oslo_selftest.py).

Run every script with the Debian interpreter, /usr/bin/python3, which has
python3-oslo.messaging 14.0.3, kombu 5.2.4 and py-amqp 5.1.1 installed.

Nothing in here writes to stdout: stdout belongs to the scripts' single
machine-readable line (READY, or one JSON object).
"""

import logging
import os
import sys

DEFAULT_URL = 'rabbit://guest:guest@127.0.0.1:5672/'
DEFAULT_EXCHANGE = 'openstack'


def env(*names, default=None):
    """First non-empty environment variable among names, else default."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


def setup_logging(debug=False):
    """Send all logging (oslo's included) to stderr, never stdout."""
    level = logging.DEBUG if debug else logging.WARNING
    logging.basicConfig(
        stream=sys.stderr, level=level,
        format='%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s')


def load_conf():
    """Parse an empty command line into oslo.config's global CONF.

    No config files are read (default_config_files/dirs are empty), so the
    scripts always run on oslo.messaging's defaults plus whatever the
    transport URL's query string sets.
    """
    from oslo_config import cfg
    import oslo_messaging  # noqa: F401  (registers the metrics options)
    cfg.CONF(args=[], project='courier_interop', prog='courier_interop',
             default_config_files=[], default_config_dirs=[])
    # oslo.messaging 14.x starts a NON-daemon metrics thread on the first
    # RPCClient call/cast (even with metrics disabled) that lingers for
    # metrics_thread_stop_timeout (10 s) and so delays interpreter exit by
    # ~10 s. 0 makes it end at once. No effect on the wire.
    cfg.CONF.set_override('metrics_thread_stop_timeout', 0,
                          group='oslo_messaging_metrics')
    return cfg.CONF


def amqp_params(conf, url):
    """py-amqp Connection kwargs for the first host of an oslo rabbit URL.

    Uses oslo's own TransportURL parser, so percent-decoding and the
    "empty vhost means /" rule are the same as the driver's.
    """
    import oslo_messaging
    parsed = oslo_messaging.TransportURL.parse(conf, url)
    if not parsed.hosts:
        raise ValueError('transport URL has no host: %r' % url)
    host = parsed.hosts[0]
    hostname = host.hostname or '127.0.0.1'
    if ':' in hostname and not hostname.startswith('['):
        hostname = '[%s]' % hostname  # IPv6 literal
    return dict(host='%s:%d' % (hostname, host.port or 5672),
                userid=host.username or 'guest',
                password=host.password or 'guest',
                virtual_host=parsed.virtual_host or '/',
                connect_timeout=5)


def amqp_connect(conf, url):
    """A fresh, plain py-amqp connection (not oslo's), already connected."""
    import amqp
    conn = amqp.Connection(**amqp_params(conf, url))
    conn.connect()
    return conn


def _delete_each(conf, url, kind, names, delete, log):
    """Run delete(channel, name) for each name, each on its own channel,
    because a refused delete (404 not found, 406 in use) closes the channel.
    Returns {name: outcome}."""
    import amqp
    out = {}
    names = [n for n in names if n]
    if not names:
        return out
    conn = amqp_connect(conf, url)
    try:
        for name in names:
            ch = conn.channel()
            try:
                out[name] = delete(ch, name)
            except amqp.exceptions.NotFound:
                out[name] = 'not found'
            except amqp.exceptions.AMQPError as e:
                out[name] = '%s: %s' % (type(e).__name__, e)
            finally:
                try:
                    if ch.is_open:
                        ch.close()
                except Exception:
                    pass
    finally:
        conn.close()
    if log:
        for name, what in out.items():
            log.info('%s %s: %s', kind, name, what)
    return out


def delete_queues(conf, url, names, if_unused=False, log=None):
    """Delete queues by name with a separate py-amqp connection.
    Returns {name: "deleted or absent (N messages)" | "<error text>"}."""
    # RabbitMQ (3.10) answers delete-ok with 0 for a missing queue too, so
    # "not found" is rarely seen.
    return _delete_each(
        conf, url, 'queue', names,
        lambda ch, name: 'deleted or absent (%s messages)'
        % ch.queue_delete(name, if_unused=if_unused), log)


def delete_exchanges(conf, url, names, if_unused=True, log=None):
    """Delete exchanges by name (if_unused=True by default: an exchange that
    still has bindings is kept)."""
    def delete(ch, name):
        # RabbitMQ answers delete-ok also for a missing exchange.
        ch.exchange_delete(name, if_unused=if_unused)
        return 'deleted (or absent)'
    return _delete_each(conf, url, 'exchange', names, delete, log)
    conn = amqp_connect(conf, url)
    try:
        for name in names:
            ch = conn.channel()
            try:
                # RabbitMQ answers delete-ok also for a missing exchange.
                ch.exchange_delete(name, if_unused=if_unused)
                out[name] = 'deleted (or absent)'
            except amqp.exceptions.AMQPError as e:
                out[name] = '%s: %s' % (type(e).__name__, e)
            finally:
                try:
                    if ch.is_open:
                        ch.close()
                except Exception:
                    pass
    finally:
        conn.close()
    if log:
        for name, what in out.items():
            log.info('exchange %s: %s', name, what)
    return out
