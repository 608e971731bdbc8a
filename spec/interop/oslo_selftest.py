#!/usr/bin/python3
"""Check oslo_server.py and oslo_client.py against EACH OTHER (oslo <-> oslo)
on a real broker, then check and clean what they leave behind.

    /usr/bin/python3 spec/interop/oslo_selftest.py [--url URL] [--slow]

Uses a fresh topic (ct_<hex>) and fresh control exchanges
(courier_selftest_<hex>[_d]) per run and never touches a shared exchange
such as "openstack". --slow adds the case where a server replies to a
reply queue the client has already deleted (takes ~60 s+). Prints one line
per check ("ok"/"FAIL") on stdout, the leftovers after graceful stops, and
deletes everything it created (verified with rabbitmqctl). Exit status 0
if every check passed.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, HERE)
import oslo_common  # noqa: E402

PY = '/usr/bin/python3'
SERVER = os.path.join(HERE, 'oslo_server.py')
CLIENT = os.path.join(HERE, 'oslo_client.py')
CLEANUP = os.path.join(HERE, 'oslo_cleanup.py')

RESULTS = []


def check(name, cond, detail=''):
    RESULTS.append(bool(cond))
    print('%-4s %s%s' % ('ok' if cond else 'FAIL', name,
                         ('  -- %r' % (detail,)) if detail else ''),
          flush=True)


class Server(object):
    def __init__(self, url, exchange, topic, server, *extra):
        self.name = server
        self.log = open('/tmp/oslo_selftest_%s_%s.log' % (topic, server), 'w')
        self.proc = subprocess.Popen(
            [PY, SERVER, '--url', url, '--exchange', exchange,
             '--topic', topic, '--server', server] + list(extra),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline()
        if line != b'READY\n':
            raise RuntimeError('server %s did not get READY: %r' %
                               (server, line))

    def stop(self, how='stdin'):
        """Graceful stop; returns (seconds, exit status, extra stdout)."""
        t = time.monotonic()
        if how == 'stdin':
            self.proc.stdin.close()
        else:
            self.proc.terminate()  # SIGTERM
        rest = self.proc.stdout.read()
        rc = self.proc.wait(timeout=120)
        self.log.close()
        return round(time.monotonic() - t, 2), rc, rest


def client(url, exchange, topic, action, method, kwargs=None, *extra):
    argv = [PY, CLIENT, action, method, json.dumps(kwargs or {}),
            '--url', url, '--exchange', exchange, '--topic', topic]
    argv += list(extra)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != 1:
        raise RuntimeError('client %s: rc=%s stdout=%r stderr=%s' % (
            argv, proc.returncode, proc.stdout, proc.stderr[-2000:]))
    return json.loads(lines[0])


def rabbit_list(kind, cols):
    out = subprocess.run(['rabbitmqctl', '-q', '--no-table-headers', kind]
                         + cols, check=True, capture_output=True,
                         text=True).stdout
    return [line.split('\t') for line in out.splitlines() if line.strip()]


def ours(prefixes):
    qs = [r for r in rabbit_list('list_queues',
                                 ['name', 'durable', 'auto_delete',
                                  'arguments'])
          if any(r[0].startswith(p) for p in prefixes)]
    xs = [r for r in rabbit_list('list_exchanges',
                                 ['name', 'type', 'durable', 'auto_delete'])
          if any(r[0].startswith(p) for p in prefixes)]
    return qs, xs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--url', default=oslo_common.DEFAULT_URL)
    ap.add_argument('--slow', action='store_true')
    a = ap.parse_args()
    url = a.url
    run = uuid.uuid4().hex[:6]
    topic = 'ct_%s' % run
    exchange = 'courier_selftest_%s' % run
    reply_queues = []

    def c(action, method, kwargs=None, *extra):
        out = client(url, exchange, topic, action, method, kwargs, *extra)
        if out.get('reply_queue'):
            reply_queues.append(out['reply_queue'])
        return out

    s1 = Server(url, exchange, topic, 's1')
    s2 = Server(url, exchange, topic, 's2')
    try:
        r = c('call', 'add', {'a': 2, 'b': 3})
        check('call add', r == dict(r, ok=True, result=5), r)
        v = {'s': 'snow \u2603 \U0001F600 \u00e9', 'n': [1, 2.5, None, True],
             'o': {'k': {}}}
        r = c('call', 'echo', {'value': v}, '--version', '1.3')
        check('call echo nested/unicode v1.3', r['ok'] and r['result'] == v, r)
        r = c('call', 'add', {'a': 1, 'b': 1}, '--version', '1.1')
        check('call version 1.1 on 1.3 endpoint', r['result'] == 2, r)
        for ver in ('1.4', '2.0'):
            r = c('call', 'add', {'a': 1, 'b': 1}, '--version', ver)
            check('call version %s -> RemoteError UnsupportedVersion' % ver,
                  r['error_class'] == 'RemoteError'
                  and r['exc_type'] == 'UnsupportedVersion', r)
        r = c('call', 'add', {'a': 1, 'b': 1}, '--namespace', 'other')
        check('call unknown namespace -> RemoteError UnsupportedVersion',
              r['exc_type'] == 'UnsupportedVersion', r)

        r = c('call', 'fail', {'message': 'boom'})
        check('call fail -> ValueError (builtins) rebuilt',
              r['ok'] is False and r['error_class'] == 'ValueError'
              and r['error_module'] == 'builtins' and r['exc_type'] is None
              and r['message'] == 'boom'
              and r['value'].startswith('boom\nTraceback')
              and r['value'].rstrip().endswith('ValueError: boom'),
              {k: r[k] for k in ('error_class', 'error_module', 'message')})
        r = c('call', 'add', {'a': 1})
        check('call missing argument -> TypeError (builtins)',
              r['error_class'] == 'TypeError' and
              "missing 1 required positional argument: 'b'" in r['message'],
              r['message'])
        r = c('call', 'nope')
        check('call unknown method -> RemoteError NoSuchMethod',
              r['error_class'] == 'RemoteError'
              and r['error_module'] == 'oslo_messaging.rpc.client'
              and r['exc_type'] == 'NoSuchMethod'
              and r['value'] == 'Endpoint does not support RPC method nope',
              r)
        r = c('call', '_notes')
        check('call _private -> RemoteError NoSuchMethod',
              r['exc_type'] == 'NoSuchMethod', r['value'])
        r = c('call', 'nope', {}, '--allowed-exmods',
              'oslo_messaging.rpc.dispatcher')
        check('call unknown method, dispatcher module allowed -> '
              'NoSuchMethod_Remote',
              r['error_class'] == 'NoSuchMethod_Remote'
              and r['error_module'] == 'oslo_messaging.rpc.dispatcher_Remote'
              and r['exc_type'] is None
              and r['message'] == 'Endpoint does not support RPC method nope',
              {k: r[k] for k in ('error_class', 'error_module', 'message')})

        seen = {c('call', 'whoami', {}, '--server', 's2')['result']
                for _ in range(4)}
        check('call --server s2 reaches only s2 (4 calls)', seen == {'s2'},
              seen)
        seen = [c('call', 'whoami')['result'] for _ in range(6)]
        check('call without --server round-robins over s1 and s2',
              set(seen) == {'s1', 's2'}, seen)

        ctx = {'user_id': 'u1', 'project_id': 'p1', 'request_id': 'req-42',
               'roles': ['admin', 'member'], 'is_admin': False,
               'nested': {'a': [1, 2]}}
        r = c('call', 'ctx', {}, '--context', json.dumps(ctx))
        check('context round trip (+ client_timeout null)',
              r['result'] == dict(ctx, client_timeout=None), r['result'])
        r = c('call', 'ctx', {}, '--context', json.dumps(ctx),
              '--monitor', '4')
        check('context with --monitor 4 -> client_timeout 4',
              r['result'] == dict(ctx, client_timeout=4), r['result'])

        r = c('cast', 'note', {'value': 'cast-1'})
        check('cast -> ok, result null, no reply queue',
              r == dict(r, ok=True, result=None, reply_queue=None), r)
        r = c('cast', 'note', {'value': 'cast-s2'}, '--server', 's2')
        check('cast --server s2', r['ok'], r)
        r = c('fanout', 'note', {'value': 'fan-1'})
        check('fanout cast', r == dict(r, ok=True, result=None), r)
        time.sleep(0.5)
        n1 = c('call', 'notes', {}, '--server', 's1')['result']
        n2 = c('call', 'notes', {}, '--server', 's2')['result']
        check('fanout reached both servers', 'fan-1' in n1 and 'fan-1' in n2,
              (n1, n2))
        check('cast reached exactly one server',
              ('cast-1' in n1) != ('cast-1' in n2), (n1, n2))
        check('cast --server s2 reached s2 only',
              'cast-s2' in n2 and 'cast-s2' not in n1, (n1, n2))

        r = c('call', 'sleep', {'seconds': 0.2}, '--timeout', '5')
        check('call sleep 0.2 within timeout 5', r['result'] == 0.2, r)
        r = c('call', 'sleep', {'seconds': 3}, '--monitor', '2',
              '--timeout', '10')
        check('call sleep 3 with --monitor 2 (heartbeats) -> 3',
              r['result'] == 3 and 2.9 < r['elapsed'] < 5, r)
        r = c('call', 'sleep', {'seconds': 5}, '--monitor', '2',
              '--timeout', '3')
        check('heartbeats do not extend --timeout 3 (sleep 5)',
              r['error_class'] == 'MessagingTimeout'
              and 2.9 < r['elapsed'] < 4.5, r)
        r = c('call', 'sleep', {'seconds': 1.5}, '--timeout', '1')
        check('call timeout -> MessagingTimeout after ~1 s',
              r['error_class'] == 'MessagingTimeout'
              and r['exc_type'] is None and 0.9 < r['elapsed'] < 2
              and r['message'].startswith(
                  'Timed out waiting for a reply to message ID '), r)
        r = client(url, exchange, topic + '_nobody', 'call', 'add',
                   {'a': 1, 'b': 2}, '--timeout', '1')
        reply_queues.append(r['reply_queue'])
        check('call to a topic with no server -> MessagingTimeout',
              r['error_class'] == 'MessagingTimeout', r)
        r = client(url, exchange + '_other', topic, 'call', 'add',
                   {'a': 1, 'b': 2}, '--timeout', '1')
        reply_queues.append(r['reply_queue'])
        check('call on another control exchange -> MessagingTimeout',
              r['error_class'] == 'MessagingTimeout', r)
        subprocess.run([PY, CLEANUP, '--topic', topic + '_nobody',
                        '--exchange', exchange + '_other',
                        '--delete-exchange'], check=True,
                       capture_output=True)

        qs = {row[0] for row in rabbit_list('list_queues', ['name'])}
        left = [q for q in reply_queues if q in qs]
        check('every client deleted its reply queue (%d calls)'
              % len(reply_queues), not left, left)
    finally:
        # 1.5 s sleep above timed out at 1 s, so s1 or s2 replied to a
        # deleted reply queue. Give it the 60 s retry window only in --slow.
        pass

    qs, xs = ours([topic])
    check('while running: topic, 2 server, 2 fanout queues; fanout exchange',
          len(qs) == 5 and [x[0] for x in xs] == [topic + '_fanout'],
          (qs, xs))

    t1, rc1, out1 = s1.stop('stdin')
    t2, rc2, out2 = s2.stop('sigterm')
    check('graceful stop on stdin EOF: rc 0, nothing more on stdout',
          rc1 == 0 and out1 == b'', (t1, rc1, out1))
    check('graceful stop on SIGTERM: rc 0, nothing more on stdout',
          rc2 == 0 and out2 == b'', (t2, rc2, out2))
    print('     stop took %.2f s (stdin) and %.2f s (SIGTERM)' % (t1, t2))

    qs, xs = ours([topic, exchange])
    print('     leftovers after graceful stop:')
    for row in qs:
        print('       queue    ' + '\t'.join(row))
    for row in xs:
        print('       exchange ' + '\t'.join(row))
    check('leftovers = <topic>, <topic>.s1, <topic>.s2 + control exchange',
          sorted(r[0] for r in qs) == sorted([topic, topic + '.s1',
                                              topic + '.s2'])
          and [x[0] for x in xs] == [exchange], (qs, xs))

    # Second run: --delete-queues-on-exit (own exchange, so that nothing
    # shared such as "openstack" is ever deleted by this script).
    topic2 = topic + '_d'
    exchange2 = exchange + '_d'
    s3 = Server(url, exchange2, topic2, 's3', '--delete-queues-on-exit')
    r = client(url, exchange2, topic2, 'call', 'whoami')
    reply_queues.append(r['reply_queue'])
    check('second server: whoami', r['result'] == 's3', r)
    s3.stop('sigterm')
    qs, xs = ours([topic2, exchange2])
    check('--delete-queues-on-exit leaves only the control exchange',
          not qs and [x[0] for x in xs] == [exchange2], (qs, xs))
    oslo_common.delete_exchanges(oslo_common.load_conf(), url, [exchange2])

    if a.slow:
        s4 = Server(url, exchange, topic, 's4')
        r = c('call', 'sleep', {'seconds': 2}, '--timeout', '1')
        check('slow: timeout', r['error_class'] == 'MessagingTimeout', r)
        t4, rc4, _ = s4.stop('sigterm')
        print('     slow: stop after a reply to a deleted reply queue took '
              '%.1f s' % t4)
        check('slow: stop waits for the missing-reply-queue retries',
              t4 > 30, t4)
        s5 = Server(url + '?kombu_missing_consumer_retry_timeout=1', exchange,
                    topic, 's5')
        r = c('call', 'sleep', {'seconds': 2}, '--timeout', '1')
        time.sleep(1.5)
        t5, rc5, _ = s5.stop('sigterm')
        print('     slow: same with ?kombu_missing_consumer_retry_timeout=1 '
              'took %.1f s' % t5)
        check('slow: URL option shortens the stop', t5 < 10, t5)

    cl = subprocess.run([PY, CLEANUP, '--topic', topic, '--server', 's1',
                         '--server', 's2', '--server', 's4', '--server', 's5',
                         '--exchange', exchange, '--delete-exchange',
                         '--fanout-leftovers'],
                        check=True, capture_output=True, text=True)
    print('     cleanup: ' + cl.stdout.strip())
    qs, xs = ours([topic, exchange])
    check('after cleanup: no queue/exchange of this run left',
          not qs and not xs, (qs, xs))
    print('%d/%d checks passed' % (sum(RESULTS), len(RESULTS)))
    return 0 if all(RESULTS) else 1


if __name__ == '__main__':
    sys.exit(main())
