/**
 * The orchestrator's own raw amqplib connection: checks the broker is there before a
 * run, and deletes every queue and exchange each run declared. Courier, like
 * oslo.messaging, leaves its `<topic>` and `<topic>.<host>` queues behind on purpose.
 */
import * as amqp from 'amqplib';

export function maskUrl(url: string): string {
  return url.replace(/(\/\/[^:/@,]*:)[^@/]*@/g, '$1***@');
}

export class BrokerAdmin {
  private conn?: amqp.ChannelModel;

  constructor(readonly url: string) {}

  async connect(): Promise<void> {
    if (this.conn) return;
    try {
      this.conn = await amqp.connect(this.url, { noDelay: true, timeout: 5000 });
    } catch (err) {
      throw new Error(`cannot connect to the broker at ${maskUrl(this.url)}: ${(err as Error).message}`);
    }
    this.conn.on('error', () => {});
    this.conn.on('close', () => (this.conn = undefined));
  }

  /** Deletes queues, then exchanges; a name that does not exist is not an error. Returns failures. */
  async delete(queues: string[], exchanges: string[]): Promise<string[]> {
    const failures: string[] = [];
    if (!queues.length && !exchanges.length) return failures;
    await this.connect();
    // A failed delete closes its channel, so each gets a fresh one when needed.
    let ch: amqp.Channel | undefined;
    const channel = async (): Promise<amqp.Channel> => {
      if (!ch) {
        ch = await this.conn!.createChannel();
        ch.on('error', () => {});
        ch.on('close', () => (ch = undefined));
      }
      return ch;
    };
    for (const q of queues) {
      try {
        await (await channel()).deleteQueue(q);
      } catch (err) {
        ch = undefined;
        failures.push(`queue ${q}: ${(err as Error).message}`);
      }
    }
    for (const x of exchanges) {
      try {
        await (await channel()).deleteExchange(x);
      } catch (err) {
        ch = undefined;
        failures.push(`exchange ${x}: ${(err as Error).message}`);
      }
    }
    if (ch) await ch.close().catch(() => {});
    return failures;
  }

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    if (conn) await conn.close().catch(() => {});
  }
}
