#!/usr/bin/python3
"""Probe oslo.messaging 14.0.3 tolerances that matter to Courier.

    /usr/bin/python3 spec/interop/oslo_probe.py [--url URL]

Part A: hand-made requests (py-amqp, no oslo code) sent to a real oslo RPC
        server (oslo_server.py): extra keys in the request.
Part B: a hand-made server (py-amqp) answering the real oslo RPCClient
        (oslo_client.py): extra keys in replies, streamed partial replies,
        a failure from module "courier".
Part C: what the server puts into the context (client_timeout).
Part D: what a server + client leave on the broker after a graceful stop.

Prints one line per probe ("ok"/"FAIL" = matched the expectation written in
the probe) and deletes everything it created. Exit 0 if all matched.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, HERE)
import oslo_common  # noqa: E402

import amqp  # noqa: E402

PY = '/usr/bin/python3'
RESULTS = []


def report(name, cond, detail):
    RESULTS.append(bool(cond))
    print('%-4s %s: %s' % ('ok' if cond else 'FAIL', name, detail),
          flush=True)


def hexid():
    return uuid.uuid4().hex


def envelope(msg, **extra_envelope_keys):
    body = {'oslo.version': '2.0', 'oslo.message': json.dumps(msg)}
    body.update(extra_envelope_keys)
    return json.dumps(body)


def props(**extra):
    p = dict(content_type='application/json', content_encoding='utf-8',
             delivery_mode=2)
    p.update(extra)
    return p


def rabbit_rows(kind, cols):
    out = subprocess.run(['rabbitmqctl', '-q', '--no-table-headers', kind]
                         + cols, check=True, capture_output=True,
                         text=True).stdout
    return [line.split('\t') for line in out.splitlines() if line.strip()]


# --------------------------------------------------------------- Part A


class RawCaller(object):
    """Minimal hand-made oslo caller: its own exclusive reply queue."""

    def __init__(self, conf, url, exchange):
        self.conn = oslo_common.amqp_connect(conf, url)
        self.ch = self.conn.channel()
        self.exchange = exchange
        self.reply_q = 'reply_' + hexid()
        # exclusive + auto_delete: gone when this connection closes
        self.ch.queue_declare(self.reply_q, exclusive=True, auto_delete=True)
        self.replies = []
        self.ch.basic_consume(self.reply_q, no_ack=True,
                              callback=self.replies.append)

    def send(self, routing_key, msg, properties=None, envelope_extra=None):
        self.ch.basic_publish(
            amqp.Message(envelope(msg, **(envelope_extra or {})),
                         **(properties or props())),
            exchange=self.exchange, routing_key=routing_key)

    def call(self, topic, msg, timeout=5.0, **kw):
        """Send a call; return the decoded inner reply, or None."""
        msg = dict(msg, _msg_id=hexid(), _reply_q=self.reply_q,
                   _unique_id=hexid())
        self.replies.clear()
        self.send(topic, msg, **kw)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.replies:
                raw = json.loads(self.replies[0].body)
                return json.loads(raw['oslo.message'])
            try:
                self.conn.drain_events(timeout=0.2)
            except Exception:  # socket.timeout
                pass
        return None

    def close(self):
        self.conn.close()


def part_a(conf, url, exchange, topic):
    srv = subprocess.Popen([PY, os.path.join(HERE, 'oslo_server.py'),
                            '--url', url, '--exchange', exchange,
                            '--topic', topic, '--server', 'pa'],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=open('/tmp/oslo_probe_A.log', 'w'))
    assert srv.stdout.readline() == b'READY\n'
    rc = RawCaller(conf, url, exchange)
    try:
        base = {'method': 'add', 'args': {'a': 2, 'b': 3}, 'version': '1.3',
                '_timeout': None, '_context_user_id': 'u1'}
        r = rc.call(topic, base)
        report('A0 baseline call', r and r['result'] == 5
               and r['failure'] is None and r['ending'] is True, r)

        r = rc.call(topic, dict(base, _courier_stream=True))
        report('A1 extra top-level key "_courier_stream": true in request',
               r and r['result'] == 5 and r['failure'] is None
               and r['ending'] is True
               and set(r) == {'result', 'failure', 'ending', '_msg_id',
                              '_unique_id'}, r)

        r = rc.call(topic, dict(base, _courier_stream=True, _courier_seq=0,
                                courier={'stream': {'window': 8}},
                                stream=True, x=[1, 2]))
        report('A2 several extra keys (nested objects, no "_" prefix)',
               r and r['result'] == 5 and r['failure'] is None, r)

        r = rc.call(topic, {'method': 'ctx', 'args': {}, '_timeout': None,
                            '_context_user_id': 'u1',
                            '_courier_stream': True})
        report('A3 extra key does not leak into the context',
               r and r['result'] == {'user_id': 'u1',
                                     'client_timeout': None}, r)

        r = rc.call(topic, base, envelope_extra={'courier.stream': True,
                                                 '_courier_seq': 1})
        report('A4 extra key in the envelope (next to oslo.version)',
               r and r['result'] == 5, r)

        r = rc.call(topic, base, properties=props(
            correlation_id='c-1', reply_to='courier_reply_elsewhere',
            message_id='m-1', type='courier.request', app_id='courier',
            timestamp=int(time.time()),
            application_headers={'x-courier-stream': True,
                                 'x-courier-seq': 3}))
        report('A5 extra AMQP properties + headers on the request',
               r and r['result'] == 5, r)

        note = {'method': 'note', 'args': {'value': 'cast-extra'},
                '_unique_id': hexid(), '_courier_stream': True}
        rc.send(topic, note)
        time.sleep(0.5)
        r = rc.call(topic, {'method': 'notes', 'args': {}})
        report('A6 cast with an extra key is executed',
               r and r['result'] == ['cast-extra'], r)

        r = rc.call(topic, dict(base, _timeout=2.5, method='ctx', args={}))
        report('C1 client_timeout = the request\'s _timeout verbatim (2.5)',
               r and r['result'] == {'user_id': 'u1', 'client_timeout': 2.5},
               r and r['result'])
        msg = dict(base, method='ctx', args={})
        del msg['_timeout']
        r = rc.call(topic, msg)
        report('C2 no _timeout key -> client_timeout null',
               r and r['result'] == {'user_id': 'u1', 'client_timeout': None},
               r and r['result'])
        r = rc.call(topic, dict(base, method='ctx', args={},
                                _context_client_timeout=99))
        report('C3 a context key "client_timeout" is overwritten by _timeout',
               r and r['result'].get('client_timeout') is None,
               r and r['result'])
    finally:
        rc.close()
        srv.stdin.close()
        srv.wait(timeout=120)
        oslo_common.delete_queues(conf, url, [topic, topic + '.pa'])


# --------------------------------------------------------------- Part B


class FakeServer(threading.Thread):
    """Consumes <topic> on the control exchange and answers each call by the
    script registered for its method: a list of reply dicts (without
    _msg_id, which is added)."""

    def __init__(self, conf, url, exchange, topic, scripts):
        super(FakeServer, self).__init__(daemon=True)
        self.conn = oslo_common.amqp_connect(conf, url)
        self.ch = self.conn.channel()
        self.ch.exchange_declare(exchange, 'topic', durable=False,
                                 auto_delete=False)
        # auto_delete: the queue goes when this fake server disconnects
        self.ch.queue_declare(topic, durable=False, auto_delete=True)
        self.ch.queue_bind(topic, exchange, routing_key=topic)
        self.ch.basic_consume(topic, no_ack=True, callback=self.on_message)
        self.scripts = scripts
        self.stop = threading.Event()
        self.requests = []

    def on_message(self, message):
        raw = json.loads(message.body)
        msg = json.loads(raw['oslo.message'])
        self.requests.append(msg)
        for reply in self.scripts.get(msg['method'], []):
            if isinstance(reply, (int, float)):
                time.sleep(reply)
                continue
            reply = dict(reply, _msg_id=msg['_msg_id'],
                         _unique_id=hexid())
            self.ch.basic_publish(amqp.Message(envelope(reply), **props()),
                                  exchange='', routing_key=msg['_reply_q'],
                                  mandatory=True)

    def run(self):
        while not self.stop.is_set():
            try:
                self.conn.drain_events(timeout=0.2)
            except Exception:
                pass
        self.conn.close()


def failure(cls, module, message, **extra):
    f = {'class': cls, 'module': module, 'message': message,
         'tb': ['Traceback (most recent call last):\n',
                '  at courier (svc.ts:1)\n', '%s: %s\n' % (cls, message)],
         'args': [message], 'kwargs': {}}
    f.update(extra)
    return json.dumps(f)


def part_b(conf, url, exchange, topic):
    final = {'failure': None, 'ending': True}
    chunk = {'failure': None, 'ending': False}
    scripts = {
        'final_extra': [dict(final, result=7, _courier_seq=0,
                             _courier_stream=False)],
        'chunks_then_final': [dict(chunk, result='a', _courier_seq=1),
                              dict(chunk, result='b', _courier_seq=2),
                              dict(final, result='c', _courier_seq=3)],
        'chunks_then_null_final': [dict(chunk, result='a', _courier_seq=1),
                                   dict(chunk, result='b', _courier_seq=2),
                                   dict(final, result=None, _courier_seq=3)],
        'falsy_chunk': [dict(chunk, result=0, _courier_seq=1),
                        dict(final, result=None, _courier_seq=2)],
        'null_chunk': [dict(chunk, result=None, _courier_seq=1),
                       dict(final, result=5, _courier_seq=2)],
        'quota': [dict(final, result=None, _courier_seq=0,
                       failure=failure('QuotaExceeded', 'courier',
                                       'too many widgets'))],
        'quota_extra_fields': [dict(final, result=None, failure=failure(
            'QuotaExceeded', 'courier', 'too many widgets',
            courier={'code': 'QUOTA', 'retryAfter': 3}))],
        'value_error_extra': [dict(final, result=None, _courier_seq=9,
                                   failure=failure('ValueError', 'builtins',
                                                   'bad', courier={}))],
        'chunk_then_failure': [dict(chunk, result='a', _courier_seq=1),
                               dict(final, result=None, _courier_seq=2,
                                    failure=failure('QuotaExceeded',
                                                    'courier', 'late'))],
        'failure_then_result': [dict(chunk, result=None, failure=failure(
            'QuotaExceeded', 'courier', 'early')),
            dict(final, result='won')],
    }
    fake = FakeServer(conf, url, exchange, topic, scripts)
    fake.start()

    def call(method, *extra):
        p = subprocess.run([PY, os.path.join(HERE, 'oslo_client.py'), 'call',
                            method, '{}', '--url', url, '--exchange',
                            exchange, '--topic', topic, '--timeout', '3']
                           + list(extra), capture_output=True, text=True)
        return json.loads(p.stdout)

    try:
        r = call('final_extra')
        report('B1 final reply with extra keys (_courier_seq, _courier_stream)',
               r['ok'] and r['result'] == 7, r['result'])
        r = call('chunks_then_final')
        report('B2 ending:false replies with non-null result + _courier_seq, '
               'then final -> client returns the LAST non-null result',
               r['ok'] and r['result'] == 'c', r['result'])
        r = call('chunks_then_null_final')
        report('B3 same, final result null -> last non-null chunk wins',
               r['ok'] and r['result'] == 'b', r['result'])
        r = call('falsy_chunk')
        report('B4 ending:false chunk with result 0 (falsy, not null) is '
               'kept (not a heartbeat)', r['ok'] and r['result'] == 0,
               r['result'])
        r = call('null_chunk')
        report('B5 ending:false chunk with result null, no monitor -> '
               'AttributeError in the caller (treated as heartbeat)',
               r['error_class'] == 'AttributeError',
               (r.get('error_class'), r.get('value')))
        r = call('null_chunk', '--monitor', '2')
        report('B5m same with --monitor 2 -> heartbeat, result 5',
               r['ok'] and r['result'] == 5, r.get('result'))
        r = call('quota')
        report('B6 failure module "courier" class QuotaExceeded -> '
               'RemoteError exc_type QuotaExceeded, value = message',
               r['error_class'] == 'RemoteError'
               and r['exc_type'] == 'QuotaExceeded'
               and r['value'] == 'too many widgets', r)
        r = call('quota', '--allowed-exmods', 'courier')
        report('B7 same with allowed_remote_exmods=["courier"] (module not '
               'importable) -> still RemoteError',
               r['error_class'] == 'RemoteError'
               and r['exc_type'] == 'QuotaExceeded', r)
        r = call('quota_extra_fields')
        report('B8 extra keys inside the failure JSON are ignored',
               r['exc_type'] == 'QuotaExceeded'
               and r['value'] == 'too many widgets', r)
        r = call('value_error_extra')
        report('B9 builtins ValueError failure with extra keys -> ValueError',
               r['error_class'] == 'ValueError' and r['message'] == 'bad',
               (r['error_class'], r['message']))
        r = call('chunk_then_failure')
        report('B10 chunk then failure -> failure raised',
               r['exc_type'] == 'QuotaExceeded', r)
        r = call('failure_then_result')
        report('B11 failure (ending:false) then a non-null result -> the '
               'result wins, failure is lost', r['ok'] and r['result'] ==
               'won', r)
        want = {'method', 'args', '_msg_id', '_reply_q', '_timeout',
                '_unique_id'}
        report('B12 request keys sent by oslo_client (no context given)',
               set(fake.requests[0]) == want, sorted(fake.requests[0]))
    finally:
        fake.stop.set()
        fake.join()


# --------------------------------------------------------------- Part D


def part_d(conf, url, exchange, topic):
    srv = subprocess.Popen([PY, os.path.join(HERE, 'oslo_server.py'),
                            '--url', url, '--exchange', exchange,
                            '--topic', topic, '--server', 'pd'],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=open('/tmp/oslo_probe_D.log', 'w'))
    assert srv.stdout.readline() == b'READY\n'
    p = subprocess.run([PY, os.path.join(HERE, 'oslo_client.py'), 'call',
                        'whoami', '--url', url, '--exchange', exchange,
                        '--topic', topic, '--keep-reply-queue'],
                       capture_output=True, text=True)
    reply_q = json.loads(p.stdout)['reply_queue']
    cols = ['name', 'durable', 'auto_delete', 'exclusive', 'arguments']
    running = [r for r in rabbit_rows('list_queues', cols)
               if r[0].startswith(topic) or r[0] == reply_q]
    t = time.monotonic()
    srv.stdin.close()
    srv.wait(timeout=120)
    stop_s = time.monotonic() - t
    after_q = [r for r in rabbit_rows('list_queues', cols)
               if r[0].startswith(topic) or r[0] == reply_q]
    after_x = [r for r in rabbit_rows('list_exchanges',
                                      ['name', 'type', 'durable',
                                       'auto_delete'])
               if r[0].startswith(topic) or r[0] == exchange]
    print('     D: while running (server + client --keep-reply-queue):')
    for r in running:
        print('        ' + '\t'.join(r))
    print('     D: after graceful stop (%.1f s) + client exit:' % stop_s)
    for r in after_q:
        print('        queue    ' + '\t'.join(r))
    for r in after_x:
        print('        exchange ' + '\t'.join(r))
    names = sorted(r[0] for r in after_q)
    report('D1 left: <topic>, <topic>.<server>, reply queue (x-expires), '
           'control exchange; fanout queue+exchange gone',
           names == sorted([topic, topic + '.pd', reply_q])
           and [x[0] for x in after_x] == [exchange], names)
    oslo_common.delete_queues(conf, url, [topic, topic + '.pd', reply_q])
    oslo_common.delete_exchanges(conf, url, [exchange, topic + '_fanout'])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--url', default=oslo_common.DEFAULT_URL)
    a = ap.parse_args()
    oslo_common.setup_logging(False)
    conf = oslo_common.load_conf()
    run = hexid()[:6]
    exchange = 'courier_probe_%s' % run
    try:
        part_a(conf, a.url, exchange, 'cpa_%s' % run)
        part_b(conf, a.url, exchange, 'cpb_%s' % run)
        part_d(conf, a.url, exchange + '_d', 'cpd_%s' % run)
    finally:
        oslo_common.delete_queues(conf, a.url, ['cpb_%s' % run])
        oslo_common.delete_exchanges(conf, a.url, [
            exchange, exchange + '_d', 'cpa_%s_fanout' % run,
            'cpd_%s_fanout' % run])
        left = [r for r in rabbit_rows('list_queues', ['name'])
                + rabbit_rows('list_exchanges', ['name'])
                if run in r[0]]
        report('cleanup: nothing of this run left', not left, left)
    print('%d/%d probes as expected' % (sum(RESULTS), len(RESULTS)))
    return 0 if all(RESULTS) else 1


if __name__ == '__main__':
    sys.exit(main())
