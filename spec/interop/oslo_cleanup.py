#!/usr/bin/python3
"""Delete what oslo.messaging servers/clients leave on the broker for a topic.

    /usr/bin/python3 spec/interop/oslo_cleanup.py --topic T
        [--server S ...] [--queue NAME ...] [--url URL]
        [--exchange X --delete-exchange] [--fanout-leftovers] [--debug]

Deletes, each with its own channel of a plain py-amqp connection:
  * queue <T> (the shared topic queue; never deleted by oslo),
  * queue <T>.<S> for every --server S (never deleted by oslo),
  * every --queue NAME (e.g. a reply_<hex> queue kept by a client),
  * exchange <T>_fanout, if unused (normally already gone: it is auto_delete),
  * with --delete-exchange: the control exchange --exchange, if unused
    (oslo never deletes it; only do this for a per-test exchange name),
  * with --fanout-leftovers: queues named <T>_fanout_<32 hex> found with
    `rabbitmqctl list_queues` (fanout queues of servers that did not stop
    gracefully; otherwise they expire after x-expires = 30 min unused).

Queues are deleted unconditionally (consumers are cancelled, messages are
dropped). Prints one JSON line {"queues": {...}, "exchanges": {...}} on
stdout; exit status 0.
"""

import argparse
import json
import logging
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oslo_common  # noqa: E402

LOG = logging.getLogger('oslo_cleanup')


def fanout_leftovers(topic, vhost='/'):
    out = subprocess.run(
        ['rabbitmqctl', '-q', 'list_queues', '-p', vhost, 'name'],
        check=True, capture_output=True, text=True).stdout
    pattern = re.compile(r'^%s_fanout_[0-9a-f]{32}$' % re.escape(topic))
    return [line.strip() for line in out.splitlines()
            if pattern.match(line.strip())]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--url', default=oslo_common.env(
        'OSLO_URL', 'TRANSPORT_URL', default=oslo_common.DEFAULT_URL))
    p.add_argument('--topic', required=True)
    p.add_argument('--server', action='append', default=[])
    p.add_argument('--queue', action='append', default=[])
    p.add_argument('--exchange', default=oslo_common.env(
        'OSLO_EXCHANGE', default=oslo_common.DEFAULT_EXCHANGE))
    p.add_argument('--delete-exchange', action='store_true')
    p.add_argument('--fanout-leftovers', action='store_true')
    p.add_argument('--debug', action='store_true')
    args = p.parse_args(argv)
    oslo_common.setup_logging(args.debug)
    conf = oslo_common.load_conf()

    queues = [args.topic] + ['%s.%s' % (args.topic, s) for s in args.server]
    queues += args.queue
    if args.fanout_leftovers:
        vhost = oslo_common.amqp_params(conf, args.url)['virtual_host']
        queues += fanout_leftovers(args.topic, vhost)
    exchanges = ['%s_fanout' % args.topic]
    if args.delete_exchange:
        exchanges.append(args.exchange)

    out = {'queues': oslo_common.delete_queues(conf, args.url, queues),
           'exchanges': oslo_common.delete_exchanges(conf, args.url,
                                                     exchanges)}
    sys.stdout.write(json.dumps(out) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
