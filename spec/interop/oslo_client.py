#!/usr/bin/python3
"""Run ONE oslo.messaging RPCClient action and print ONE JSON line.

Run with the Debian interpreter (python3-oslo.messaging 14.0.3):

    /usr/bin/python3 spec/interop/oslo_client.py ACTION METHOD [KWARGS_JSON]
        --topic T [--url URL] [--exchange openstack] [--server S]
        [--version X.Y] [--namespace NS] [--timeout SECONDS]
        [--monitor SECONDS] [--context JSON] [--allowed-exmods m1,m2]
        [--retry N] [--deadline SECONDS] [--keep-reply-queue] [--debug]

    ACTION       call | cast | fanout   (fanout = cast with prepare(fanout=True);
                 --timeout/--monitor are ignored for cast and fanout)
    METHOD       endpoint method name
    KWARGS_JSON  JSON object of keyword arguments (default {})

Environment defaults (the flag wins): OSLO_URL (or TRANSPORT_URL),
OSLO_EXCHANGE, OSLO_TOPIC.

stdout: exactly one JSON object on one line, then exit status 0:

    {"ok": true, "result": <call result, null for cast/fanout>,
     "elapsed": <seconds>, "reply_queue": "reply_<hex>" | null}

    {"ok": false, "error_class": "<type(e).__name__>",
     "error_module": "<type(e).__module__>",
     "exc_type": "<RemoteError.exc_type>" | null,   (null unless RemoteError)
     "value": "<RemoteError.value, else str(e)>",
     "message": "<first line of value>",
     "elapsed": <seconds>, "reply_queue": "reply_<hex>" | null}

"elapsed" is the time of the call/cast itself (connecting included, Python
start-up and imports excluded); "reply_queue" is the reply queue the call
used (deleted again at exit unless --keep-reply-queue), null for casts.

Exit status 2 (and nothing on stdout) for a usage error (bad flags, bad
JSON). Logs, oslo's included, go to stderr only.

--deadline N: oslo retries connections FOREVER (the reply-queue listener
ignores --retry), so with the broker down the process would hang. With a
deadline, after N seconds the script prints
{"ok": false, "error_class": "DeadlineExceeded", "error_module": "oslo_client",
 "exc_type": null, ...} and exits 0 at once (os._exit).

Reply-queue cleanup (done unless --keep-reply-queue): oslo declares one reply
queue per transport, "reply_<uuid4 hex>", lazily on the first call
(durable=false, auto_delete=false, exclusive=false, x-expires=1800000), and
transport.cleanup() closes its consumer but does NOT delete it, so it would
linger for 30 minutes. Its name lives in the driver:
transport._driver._reply_q (AMQPDriverBase._get_reply_q() in
oslo_messaging/_drivers/amqpdriver.py; cleanup() resets it to None). The
script reads the name after the action and BEFORE transport.cleanup(), calls
transport.cleanup(), and then deletes the queue with its own short py-amqp
connection (queue.delete on a fresh channel; credentials and vhost come from
oslo's TransportURL.parse of the same URL). Deleting after cleanup() matters:
while oslo's consumer is still attached, the broker's consumer-cancel would
make kombu re-declare the queue.

Caveat: a server that replies after this process has deleted its reply
queue (a call that timed out here) gets basic.return and retries for
kombu_missing_consumer_retry_timeout (60 s by default), which also delays
that server's graceful stop. See NOTES.md.
"""

import argparse
import json
import logging
import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oslo_common  # noqa: E402

LOG = logging.getLogger('oslo_client')


def _json_object(text, what, parser):
    try:
        value = json.loads(text)
    except ValueError as e:
        parser.error('%s is not valid JSON: %s' % (what, e))
    if not isinstance(value, dict):
        parser.error('%s must be a JSON object' % what)
    return value


def parse_args(argv):
    p = argparse.ArgumentParser(
        description='Run one oslo.messaging RPCClient action, print one JSON '
                    'line')
    p.add_argument('action', choices=('call', 'cast', 'fanout'))
    p.add_argument('method')
    p.add_argument('kwargs', nargs='?', default='{}',
                   help='JSON object of keyword arguments (default {})')
    p.add_argument('--url', default=oslo_common.env(
        'OSLO_URL', 'TRANSPORT_URL', default=oslo_common.DEFAULT_URL))
    p.add_argument('--exchange', default=oslo_common.env(
        'OSLO_EXCHANGE', default=oslo_common.DEFAULT_EXCHANGE),
        help='control exchange, via Target(exchange=) (default %(default)s)')
    p.add_argument('--topic', default=oslo_common.env('OSLO_TOPIC'))
    p.add_argument('--server', default=None,
                   help='send to <topic>.<server> only')
    p.add_argument('--version', default=None,
                   help='message version X.Y (default: none sent, which the '
                        'server treats as 1.0)')
    p.add_argument('--namespace', default=None)
    p.add_argument('--timeout', type=float, default=None,
                   help='call timeout in seconds (default oslo '
                        'rpc_response_timeout = 60)')
    p.add_argument('--monitor', type=float, default=None,
                   help='call_monitor_timeout in seconds (sent as _timeout)')
    p.add_argument('--context', default='{}',
                   help='request context as a JSON object (default {})')
    p.add_argument('--allowed-exmods', default='',
                   help='comma-separated allowed_remote_exmods for the '
                        'transport')
    p.add_argument('--retry', type=int, default=None,
                   help='oslo retry for connection errors (default: forever)')
    p.add_argument('--deadline', type=float, default=None,
                   help='hard limit for the whole process: print a '
                        'DeadlineExceeded outcome and exit after N s')
    p.add_argument('--keep-reply-queue', action='store_true',
                   help='do not delete the reply queue at exit')
    p.add_argument('--debug', action='store_true', help='DEBUG logs on stderr')
    args = p.parse_args(argv)
    if not args.topic:
        p.error('--topic is required (or OSLO_TOPIC)')
    # --timeout/--monitor only mean something for call; ignored otherwise.
    args.kwargs = _json_object(args.kwargs, 'KWARGS_JSON', p)
    args.context = _json_object(args.context, '--context', p)
    args.allowed_exmods = [m for m in args.allowed_exmods.split(',') if m]
    # "--monitor 2" is sent as _timeout 2 (not 2.0), like Python callers
    # that pass an int; fractional values are kept as floats.
    args.timeout = _int_if_integral(args.timeout)
    args.monitor = _int_if_integral(args.monitor)
    return args


def _int_if_integral(value):
    if value is not None and float(value).is_integer():
        return int(value)
    return value


def describe_error(exc):
    import oslo_messaging
    out = {'ok': False,
           'error_class': type(exc).__name__,
           'error_module': type(exc).__module__,
           'exc_type': None}
    if isinstance(exc, oslo_messaging.RemoteError):
        out['exc_type'] = exc.exc_type
        out['value'] = exc.value
    else:
        out['value'] = str(exc)
    value = out['value'] if out['value'] is not None else ''
    out['message'] = str(value).split('\n', 1)[0]
    return out


def run_action(args, client):
    prepare = {}
    if args.server is not None:
        prepare['server'] = args.server
    if args.version is not None:
        prepare['version'] = args.version
    if args.namespace is not None:
        prepare['namespace'] = args.namespace
    if args.retry is not None:
        prepare['retry'] = args.retry
    if args.action == 'call':
        if args.timeout is not None:
            prepare['timeout'] = args.timeout
        if args.monitor is not None:
            prepare['call_monitor_timeout'] = args.monitor
        return client.prepare(**prepare).call(args.context, args.method,
                                              **args.kwargs)
    if args.action == 'fanout':
        prepare['fanout'] = True
    client.prepare(**prepare).cast(args.context, args.method, **args.kwargs)
    return None


_OUTPUT_LOCK = threading.Lock()
_OUTPUT_DONE = []


def emit(out):
    """Write the single JSON line; later calls are ignored."""
    with _OUTPUT_LOCK:
        if _OUTPUT_DONE:
            return False
        sys.stdout.write(json.dumps(out, default=repr) + '\n')
        sys.stdout.flush()
        _OUTPUT_DONE.append(True)
        return True


def start_deadline(seconds, started):
    def fire():
        msg = ('no outcome after %s s (broker unreachable? oslo retries '
               'connections forever)' % seconds)
        if emit({'ok': False, 'error_class': 'DeadlineExceeded',
                 'error_module': 'oslo_client', 'exc_type': None,
                 'value': msg, 'message': msg,
                 'elapsed': round(time.monotonic() - started, 3),
                 'reply_queue': None}):
            os._exit(0)
    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def main(argv=None):
    args = parse_args(argv)
    oslo_common.setup_logging(args.debug)
    started = time.monotonic()
    if args.deadline:
        start_deadline(args.deadline, started)

    import oslo_messaging
    conf = oslo_common.load_conf()

    transport = None
    reply_q = None
    try:
        transport = oslo_messaging.get_rpc_transport(
            conf, url=args.url, allowed_remote_exmods=args.allowed_exmods)
        target = oslo_messaging.Target(topic=args.topic,
                                       exchange=args.exchange)
        client = oslo_messaging.get_rpc_client(transport, target)
        started = time.monotonic()  # "elapsed" covers the action only
        result = run_action(args, client)
        out = {'ok': True, 'result': result}
    except Exception as exc:  # every outcome becomes JSON
        LOG.debug('action failed', exc_info=True)
        out = describe_error(exc)
    out['elapsed'] = round(time.monotonic() - started, 3)

    if transport is not None:
        # Read the reply queue name before cleanup() resets it (see above).
        reply_q = getattr(getattr(transport, '_driver', None), '_reply_q',
                          None)
        try:
            transport.cleanup()
        except Exception:
            LOG.warning('transport.cleanup() failed', exc_info=True)
    out['reply_queue'] = reply_q
    if reply_q and not args.keep_reply_queue:
        try:
            oslo_common.delete_queues(conf, args.url, [reply_q], log=LOG)
        except Exception:
            LOG.warning('could not delete reply queue %s', reply_q,
                        exc_info=True)

    emit(out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
