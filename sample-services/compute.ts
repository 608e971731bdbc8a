/**
 * A small nova-compute: one instance of this service runs per compute host. It shows
 * every kind of RPC method: a DTO-validated call, a cast-style method, a fanout method,
 * a generator that streams to `$multicall`, and a registered error class.
 */
import 'reflect-metadata';
import { Exclude, Type } from 'class-transformer';
import { IsDate, IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';
import { RpcError, RpcMethod, RpcService, currentContext } from '../index';

/** What a caller sends to create an instance: validated on arrival. */
export class CreateInstance {
  @IsString() @Length(1, 64) name!: string;
  @IsInt() @Min(1) @Max(64) vcpus!: number;
  @Type(() => Date) @IsDate() @IsOptional() notBefore?: Date;
}

/** What comes back: `adminPass` never leaves the compute host. */
export class Instance {
  id!: string;
  name!: string;
  vcpus!: number;
  host!: string;
  @Type(() => Date) createdAt!: Date;
  @Exclude() adminPass?: string;
}

/** Rebuilt on the caller as itself, `.limit` included. */
@RpcError()
export class QuotaExceeded extends Error {
  constructor(
    message: string,
    readonly limit: number,
  ) {
    super(message);
    this.name = 'QuotaExceeded';
  }
}

export type Log = (line: string) => void;

@RpcService('compute', { version: '1.3' })
export class ComputeService {
  private readonly instances = new Map<string, Instance>();
  private usedVcpus = 0;
  private cacheGeneration = 0;

  constructor(
    readonly host: string = 'compute',
    private readonly log: Log = () => {},
    private readonly vcpuLimit = 16,
  ) {}

  @RpcMethod({ returns: Instance })
  async create(spec: CreateInstance): Promise<Instance> {
    if (this.usedVcpus + spec.vcpus > this.vcpuLimit) {
      throw new QuotaExceeded(`${this.host} has ${this.vcpuLimit - this.usedVcpus} vcpus left, ${spec.vcpus} requested`, this.vcpuLimit);
    }
    this.usedVcpus += spec.vcpus;
    const instance = Object.assign(new Instance(), {
      id: `i-${this.instances.size + 1}@${this.host}`,
      name: spec.name,
      vcpus: spec.vcpus,
      host: this.host,
      createdAt: new Date(),
      adminPass: Math.random().toString(36).slice(2),
    });
    this.instances.set(instance.id, instance);
    this.log(`create ${spec.name} (${spec.vcpus} vcpus) for user ${String(currentContext()?.user ?? '-')}`);
    return instance;
  }

  /** Cast-style: callers use `$cast.reboot(...)` and do not wait. Needs API 1.2. */
  @RpcMethod({ since: '1.2' })
  reboot(id: string, hard = false): void {
    this.log(`${hard ? 'hard' : 'soft'} reboot of ${id}`);
  }

  /** Fanout-style: `$fanout.refreshCache()` reaches every compute host. */
  @RpcMethod()
  refreshCache(): void {
    this.cacheGeneration++;
    this.log(`cache refreshed (generation ${this.cacheGeneration})`);
  }

  /** Streams: `$multicall.consoleLog(id)` sees each line as it is produced. */
  @RpcMethod()
  async *consoleLog(id: string, lines = 3): AsyncGenerator<string> {
    for (let i = 1; i <= lines; i++) {
      await sleep(20);
      yield `[${this.host}] ${id} console line ${i}/${lines}`;
    }
  }

  @RpcMethod()
  load(): number {
    return this.usedVcpus;
  }

  @RpcMethod()
  whoami(): string {
    return this.host;
  }

  /** Takes its time: lets the demo show a timeout. */
  @RpcMethod()
  async migrate(id: string, seconds: number): Promise<string> {
    await sleep(seconds * 1000);
    return `${id} migrated`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
