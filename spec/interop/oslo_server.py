#!/usr/bin/python3
"""A real oslo.messaging RPC server for Courier's interop tests.

Run with the Debian interpreter (python3-oslo.messaging 14.0.3):

    /usr/bin/python3 spec/interop/oslo_server.py --topic T --server S \
        [--url rabbit://guest:guest@127.0.0.1:5672/] [--exchange openstack] \
        [--namespace NS] [--executor threading] [--stdin auto|watch|ignore] \
        [--ready-timeout 15] [--delete-queues-on-exit] [--debug]

Every option can also come from the environment (the flag wins):
    OSLO_URL (or TRANSPORT_URL), OSLO_EXCHANGE, OSLO_TOPIC, OSLO_SERVER,
    OSLO_NAMESPACE.

stdout carries exactly one line, "READY", printed (and flushed) once the
server has started AND the broker reports a consumer on its queues
(<topic>.<server> and its fanout queue), so a client may send right away.
Everything else (oslo logs, errors) goes to stderr.

It stops gracefully -- server.stop(); server.wait(); transport.cleanup() --
on SIGTERM, SIGINT, or EOF on stdin. With --stdin auto (the default) stdin
is only watched when it is a pipe or socket, so spawning with stdin ignored
(/dev/null) does not stop the server at once. Exit status: 0 after a
graceful stop, 1 on a startup failure (nothing printed on stdout then).

What the graceful stop leaves behind is oslo's own behaviour and nothing
more: the fanout queue <topic>_fanout_<uuid> is deleted by oslo (and the
<topic>_fanout exchange, auto_delete, goes with its last binding); the
queues <topic> and <topic>.<server> and the control exchange stay. See
NOTES.md. --delete-queues-on-exit additionally deletes, after the stop,
<topic>.<server> and <topic> (the latter with if_unused, so a queue other
servers still consume from is kept); it is off by default.

Endpoint (Target version 1.3, namespace --namespace or none):
    add(a, b) -> a + b             echo(value) -> value
    note(value) -> None (records)  notes() -> list of recorded values
    whoami() -> server name        ctx() -> the context dict received
    fail(message) -> raises ValueError(message)
    sleep(seconds) -> sleeps, returns seconds
"""

import argparse
import logging
import os
import signal
import stat
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oslo_common  # noqa: E402

LOG = logging.getLogger('oslo_server')


class InteropEndpoint(object):

    def __init__(self, server_name, namespace=None):
        import oslo_messaging
        self.target = oslo_messaging.Target(version='1.3', namespace=namespace)
        self._server_name = server_name
        self._notes = []
        self._lock = threading.Lock()

    def add(self, ctxt, a, b):
        return a + b

    def echo(self, ctxt, value):
        return value

    def note(self, ctxt, value):
        with self._lock:
            self._notes.append(value)

    def notes(self, ctxt):
        with self._lock:
            return list(self._notes)

    def whoami(self, ctxt):
        return self._server_name

    def ctx(self, ctxt):
        # No serializer is configured, so ctxt is the plain dict that oslo
        # rebuilt from the _context_* keys (plus client_timeout).
        return dict(ctxt)

    def fail(self, ctxt, message):
        raise ValueError(message)

    def sleep(self, ctxt, seconds):
        time.sleep(seconds)
        return seconds


def parse_args(argv):
    p = argparse.ArgumentParser(
        description='oslo.messaging RPC server for Courier interop tests')
    p.add_argument('--url', default=oslo_common.env(
        'OSLO_URL', 'TRANSPORT_URL', default=oslo_common.DEFAULT_URL),
        help='oslo transport URL (default %(default)s)')
    p.add_argument('--exchange', default=oslo_common.env(
        'OSLO_EXCHANGE', default=oslo_common.DEFAULT_EXCHANGE),
        help='control exchange, via Target(exchange=) (default %(default)s)')
    p.add_argument('--topic', default=oslo_common.env('OSLO_TOPIC'))
    p.add_argument('--server', default=oslo_common.env('OSLO_SERVER'))
    p.add_argument('--namespace', default=oslo_common.env('OSLO_NAMESPACE'),
                   help='namespace of the endpoint target (default none)')
    p.add_argument('--executor', default='threading')
    p.add_argument('--stdin', choices=('auto', 'watch', 'ignore'),
                   default='auto',
                   help='stop on EOF of stdin: auto = only if stdin is a '
                        'pipe/socket (default)')
    p.add_argument('--ready-timeout', type=float, default=15.0,
                   help='seconds to wait for the broker to show our '
                        'consumers before giving up (default %(default)s)')
    p.add_argument('--delete-queues-on-exit', action='store_true',
                   help='after the graceful stop also delete <topic>.<server>'
                        ' and (if unused) <topic>')
    p.add_argument('--debug', action='store_true', help='DEBUG logs on stderr')
    args = p.parse_args(argv)
    if not args.topic or not args.server:
        p.error('--topic and --server are required (or OSLO_TOPIC/OSLO_SERVER)')
    return args


def _fanout_queue_name(server):
    """Name of this server's fanout queue, from oslo internals (14.0.3):
    MessageHandlingServer.listener (PollStyleListenerAdapter)
      ._poll_style_listener (RpcAMQPListener) .conn (amqpdriver Connection
      wrapper -> impl_rabbit.Connection) ._consumers {Consumer: tag}."""
    try:
        listener = server.listener._poll_style_listener
        conn = listener.conn
        conn = getattr(conn, 'connection', conn)
        for consumer in conn._consumers:
            if consumer.type == 'fanout':
                return consumer.queue_name
    except Exception:  # internals changed: only the server queue is checked
        LOG.debug('could not find the fanout queue name', exc_info=True)
    return None


def wait_until_consuming(conf, url, queues, timeout):
    """Poll (passive queue.declare) until every queue has >= 1 consumer.

    oslo's server.start() declares and binds the queues synchronously, but
    basic.consume is issued a moment later from the poll thread. A passive
    declare creates nothing, so this leaves no trace on the broker.
    """
    import amqp
    deadline = time.monotonic() + timeout
    conn = oslo_common.amqp_connect(conf, url)
    try:
        pending = [q for q in queues if q]
        while pending:
            ch = conn.channel()
            try:
                _, _, consumers = ch.queue_declare(pending[0], passive=True)
            except amqp.exceptions.NotFound:
                consumers = 0
            finally:
                if ch.is_open:
                    ch.close()
            if consumers >= 1:
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RuntimeError('no consumer on %s after %ss'
                                   % (pending[0], timeout))
            time.sleep(0.05)
    finally:
        conn.close()


def main(argv=None):
    args = parse_args(argv)
    oslo_common.setup_logging(args.debug)

    import oslo_messaging
    conf = oslo_common.load_conf()

    stop = threading.Event()

    def on_signal(signum, frame):
        LOG.info('signal %s: stopping', signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    watch_stdin = args.stdin == 'watch'
    if args.stdin == 'auto':
        try:
            mode = os.fstat(sys.stdin.fileno()).st_mode
            watch_stdin = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        except (OSError, ValueError, AttributeError):
            watch_stdin = False
    if watch_stdin:
        def read_stdin():
            try:
                while sys.stdin.buffer.read1(65536):
                    pass
            except Exception:
                pass
            LOG.info('stdin closed: stopping')
            stop.set()
        threading.Thread(target=read_stdin, name='stdin-watch',
                         daemon=True).start()

    transport = oslo_messaging.get_rpc_transport(conf, url=args.url)
    target = oslo_messaging.Target(topic=args.topic, server=args.server,
                                   exchange=args.exchange)
    endpoint = InteropEndpoint(args.server, args.namespace)
    server = oslo_messaging.get_rpc_server(transport, target, [endpoint],
                                           executor=args.executor)
    started = False
    try:
        server.start()
        started = True
        queues = ['%s.%s' % (args.topic, args.server),
                  _fanout_queue_name(server)]
        LOG.debug('waiting for consumers on %s', queues)
        wait_until_consuming(conf, args.url, queues, args.ready_timeout)
    except Exception:
        LOG.exception('oslo server failed to start')
        if started:
            server.stop()
            server.wait()
        transport.cleanup()
        return 1

    sys.stdout.write('READY\n')
    sys.stdout.flush()
    LOG.info('serving topic=%s server=%s exchange=%s',
             args.topic, args.server, args.exchange)

    # Event.wait with a timeout so Python gets to run the signal handler.
    while not stop.wait(0.5):
        pass

    server.stop()
    server.wait()
    transport.cleanup()
    if args.delete_queues_on_exit:
        oslo_common.delete_queues(
            conf, args.url, ['%s.%s' % (args.topic, args.server)], log=LOG)
        oslo_common.delete_queues(conf, args.url, [args.topic],
                                  if_unused=True, log=LOG)
    LOG.info('stopped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
