/**
 * The seam between Courier and a broker. Internal: users pick a transport by URL.
 *
 * A transport moves opaque bytes along oslo.messaging's RabbitMQ topology; it knows
 * nothing of methods, versions or errors. Encoding lives in `lib/protocol`, shared by
 * every transport, so the in-memory broker exercises the same codec as RabbitMQ.
 *
 * Topology, per service topic (oslo-wire.md sections 2-3):
 * - control exchange (topic type) -> queue `<topic>` (shared, round robin)
 * - control exchange (topic type) -> queue `<topic>.<server>` (this host only)
 * - fanout exchange `<topic>_fanout` -> one queue per subscriber
 * - replies go through the default exchange to the caller's `reply_<uuid>` queue.
 */

/** One message handed to a subscriber. Must be settled exactly once. */
export interface Delivery {
  readonly body: Buffer;
  /** The broker has delivered this message before (to a consumer that went away). */
  readonly redelivered: boolean;
  ack(): void;
  /** `requeue: true` hands it back to the queue; `false` drops it (undecodable input). */
  reject(requeue: boolean): void;
}

/** What one server instance consumes for one topic: oslo's server-side Target. */
export interface SubscribeTarget {
  exchange: string;
  topic: string;
  server: string;
}

export interface SubscribeOptions {
  /** Most unsettled deliveries per consumer (basic.qos prefetch). */
  prefetch: number;
}

export interface Subscription {
  /** Stop taking new deliveries; unsettled ones can still be acked. */
  cancel(): Promise<void>;
  /**
   * Release everything: unsettled deliveries go back to their queues, the fanout queue
   * is deleted. The shared topic and host queues stay, as oslo leaves them.
   */
  close(): Promise<void>;
}

/** Where a request goes: oslo's client-side Target. */
export interface PublishTarget {
  exchange: string;
  topic: string;
  /** Route to `<topic>.<server>` instead of the shared `<topic>` queue. */
  server?: string;
  /** Broadcast through `<topic>_fanout` (ignores `exchange` and `server`). */
  fanout?: boolean;
}

export interface PublishOptions {
  /** Unique per message; correlates a returned message (for calls: the `_msg_id`). */
  id: string;
  /** Drop the request if no consumer takes it within this many ms (calls). */
  expirationMs?: number;
  /**
   * Wait for the broker's publisher confirm (default true). Calls pass false: their reply
   * is the end-to-end acknowledgement, and a returned call is reported through
   * `onReturn` instead of this promise.
   */
  confirm?: boolean;
}

export interface Transport {
  /** The URL with its password masked: safe for logs and error messages. */
  readonly displayUrl: string;

  /** Declare the topology for `target` and consume its topic, host and fanout queues. */
  subscribe(
    target: SubscribeTarget,
    options: SubscribeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Subscription>;

  /**
   * Publish a request. Resolves once the broker holds it (publisher confirm). Rejects
   * with `UndeliverableError` when no queue is bound for the target (mandatory publish).
   */
  publish(target: PublishTarget, body: Buffer, options: PublishOptions): Promise<void>;

  /**
   * Declare and consume this transport's reply queue (once; later calls return the
   * same name). Every reply published to it is handed to `onReply`, already acked.
   */
  replyQueue(onReply: (body: Buffer) => void): Promise<string>;

  /**
   * Be told the id of every unconfirmed request the broker returned (no queue bound).
   * A transport that knows at publish time rejects the publish promise instead.
   */
  onReturn(listener: (id: string) => void): void;

  /** Publish a reply (unconfirmed: nobody could act on a failure). A reply whose queue is gone is logged and dropped. */
  reply(replyQueue: string, body: Buffer): Promise<void>;

  /** Cancel the reply consumer, delete the reply queue, release the connection. */
  close(): Promise<void>;
}
