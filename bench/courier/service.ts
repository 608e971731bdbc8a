/**
 * The service both Courier workers host, and the driver that calls it through the
 * public API only. The topic (and exchange) are fixed at decoration time, so they come
 * from the environment the orchestrator sets, read before the class is declared.
 */
import 'reflect-metadata';
import { type RpcClient, RpcMethod, RpcService } from '../../index';
import { BenchState, ENV, streamItems } from '../common';
import type { Driver } from '../workloads';

const TOPIC = process.env[ENV.topic] || `bench-${process.pid}`;
const EXCHANGE = process.env[ENV.exchange];

@RpcService(TOPIC, EXCHANGE ? { exchange: EXCHANGE } : {})
export class BenchService {
  constructor(private readonly state: BenchState = new BenchState()) {}

  @RpcMethod()
  echo(payload: string): string {
    return payload;
  }

  @RpcMethod()
  noop(): void {}

  @RpcMethod()
  count(): number {
    return this.state.casts;
  }

  @RpcMethod()
  bump(): void {
    this.state.bump();
  }

  @RpcMethod()
  waitCount(n: number): Promise<number> {
    return this.state.waitCount(n);
  }

  @RpcMethod()
  async *stream(n: number): AsyncGenerator<number> {
    yield* streamItems(n);
  }

  @RpcMethod()
  fanoutHit(seq: number): void {
    this.state.fanoutHit(seq);
  }
}

/** The workloads' view of Courier: one typed proxy, nothing else. */
export function courierDriver(client: RpcClient): Driver {
  const bench = client.proxy(BenchService, { timeout: 20_000 });
  return {
    echo: (payload) => bench.echo(payload),
    count: () => bench.count(),
    waitCount: (n) => bench.waitCount(n),
    bump: () => bench.$cast.bump(),
    fanout: (seq) => bench.$fanout.fanoutHit(seq),
    stream: (n) => bench.$multicall.stream(n),
  };
}
