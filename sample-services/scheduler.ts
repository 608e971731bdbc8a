/**
 * A small nova-scheduler: picks the compute host with the fewest vcpus in use and asks
 * that host, and only that host, to create the instance (`$to(host)`). The request
 * context of the incoming call travels on to compute without being passed by hand.
 */
import 'reflect-metadata';
import { RpcMethod, RpcService, type RpcProxy } from '../index';
import { ComputeService, CreateInstance, Instance } from './compute';

@RpcService('scheduler', { version: '1.0' })
export class SchedulerService {
  constructor(
    private readonly compute?: RpcProxy<ComputeService>,
    private readonly hosts: string[] = [],
  ) {}

  @RpcMethod({ returns: Instance })
  async schedule(spec: CreateInstance): Promise<Instance> {
    if (!this.compute || !this.hosts.length) throw new Error('scheduler has no compute hosts configured');
    const compute = this.compute;
    const loads = await Promise.all(this.hosts.map(async (h) => ({ host: h, load: await compute.$to(h).load() })));
    loads.sort((a, b) => a.load - b.load);
    return compute.$to(loads[0].host).create(spec);
  }
}
