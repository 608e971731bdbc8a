/**
 * Arguments (api.md "Declaring a service", "Precise points"): keyword args are bound to
 * parameters by name and checked against design:paramtypes before the method runs.
 */
import 'reflect-metadata';
import { expect } from 'chai';
import { Type } from 'class-transformer';
import { IsArray, IsDate, IsInt, IsOptional, IsString, Length, Min, ValidateNested } from 'class-validator';
import { RpcMethod, RpcService, ValidationError, CourierError, start, type App, type RpcProxy, type ValidationDetail } from '../../index';
import { forEachTransport, uniqueName } from '../support/transports';
import { cleanTopic, rejectionOf } from './helpers';

class Address {
  @IsString() @Length(1, 10) city!: string;
}

class Disk {
  @IsInt() @Min(1) sizeGb!: number;
}

class CreateSpec {
  @IsString() @Length(1, 64) name!: string;
  @IsInt() @Min(1) vcpus!: number;
  @Type(() => Date) @IsDate() @IsOptional() notBefore?: Date;
  @ValidateNested() @Type(() => Address) @IsOptional() address?: Address;
  @IsArray() @ValidateNested({ each: true }) @Type(() => Disk) @IsOptional() disks?: Disk[];
}

/** Finds the detail for `property`, failing with the whole list when it is missing. */
function detail(err: ValidationError, property: string): ValidationDetail {
  const d = err.details.find((x) => x.property === property);
  expect(d, `no detail for ${property} in ${JSON.stringify(err.details)}`).to.exist;
  return d!;
}

async function validationErrorOf(p: Promise<unknown>): Promise<ValidationError> {
  const err = await rejectionOf(p);
  expect(err, `${err?.name}: ${err?.message}`).to.be.instanceOf(ValidationError);
  expect(err).to.be.instanceOf(CourierError);
  const v = err as unknown as ValidationError;
  expect(v.details).to.be.an('array').that.is.not.empty;
  for (const d of v.details) {
    expect(d.property).to.be.a('string');
    expect(d.constraints).to.be.an('object');
    expect(Object.keys(d.constraints)).to.not.be.empty;
  }
  return v;
}

forEachTransport('contract: arguments', (t) => {
  const topic = uniqueName('args');
  const host = 'args-host';

  const ran: string[] = [];

  @RpcService(topic)
  class ArgsService {
    @RpcMethod()
    create(spec: CreateSpec): Record<string, unknown> {
      ran.push('create');
      return {
        isInstance: spec instanceof CreateSpec,
        addressIsInstance: spec.address === undefined ? null : spec.address instanceof Address,
        disksAreInstances: spec.disks === undefined ? null : spec.disks.every((d) => d instanceof Disk),
        notBeforeIsDate: spec.notBefore === undefined ? null : spec.notBefore instanceof Date,
        notBefore: spec.notBefore?.getTime() ?? null,
        name: spec.name,
        vcpus: spec.vcpus,
      };
    }

    @RpcMethod()
    add(a: number, b: number): number {
      ran.push('add');
      return a + b;
    }

    @RpcMethod()
    greet(name: string, loud: boolean = false): string {
      ran.push('greet');
      return loud ? `HELLO ${name.toUpperCase()}` : `hello ${name}`;
    }

    @RpcMethod()
    when(at: Date): { isDate: boolean; time: number } {
      ran.push('when');
      return { isDate: at instanceof Date, time: at.getTime() };
    }

    @RpcMethod()
    twoSpecs(first: CreateSpec, second: CreateSpec): string {
      ran.push('twoSpecs');
      return `${first.name}+${second.name}`;
    }

    @RpcMethod({ params: ['x', 'y'] })
    renamed(a: number, b: string): string {
      ran.push('renamed');
      return `${a}:${b}`;
    }

    @RpcMethod()
    anything(value: unknown): unknown {
      ran.push('anything');
      return value;
    }
  }

  let app: App;
  let svc: RpcProxy<ArgsService>;

  before(async () => {
    app = await start({ url: t.url, host, services: [ArgsService] });
    svc = app.client.proxy(ArgsService, { timeout: 2000 });
  });
  after(async () => {
    await app?.stop();
    await cleanTopic(t, topic, [host]);
  });
  beforeEach(() => {
    ran.length = 0;
  });

  const call = (method: string, args: Record<string, unknown>) => app.client.call(topic, { method, args }, { timeout: 2000 });

  describe('class-typed parameters', () => {
    it('arrive as instances of the declared class, nested objects, arrays and Dates included', async () => {
      const at = '2030-01-02T03:04:05.000Z';
      const r = (await svc.create({ name: 'vm1', vcpus: 2, notBefore: at as unknown as Date, address: { city: 'Paris' }, disks: [{ sizeGb: 10 }, { sizeGb: 20 }] })) as Record<string, unknown>;
      expect(r).to.deep.equal({
        isInstance: true,
        addressIsInstance: true,
        disksAreInstances: true,
        notBeforeIsDate: true,
        notBefore: Date.parse(at),
        name: 'vm1',
        vcpus: 2,
      });
    });

    it('a Date sent as a Date by a TypeScript caller arrives as a Date', async () => {
      const at = new Date('2031-05-06T07:08:09.010Z');
      const r = (await svc.create({ name: 'vm1', vcpus: 1, notBefore: at })) as Record<string, unknown>;
      expect(r.notBeforeIsDate).to.equal(true);
      expect(r.notBefore).to.equal(at.getTime());
    });

    it('are validated: each failing property is named with its constraints, and the method never runs', async () => {
      const err = await validationErrorOf(svc.create({ name: '', vcpus: 0 }));
      expect(detail(err, 'spec.name').constraints).to.have.property('isLength');
      expect(detail(err, 'spec.vcpus').constraints).to.have.property('min');
      expect(err.details.map((d) => d.property).sort()).to.deep.equal(['spec.name', 'spec.vcpus']);
      expect(ran).to.deep.equal([]);
    });

    it('report wrong types with the class-validator constraint names', async () => {
      const err = await validationErrorOf(call('create', { spec: { name: 7, vcpus: 'two' } }));
      expect(detail(err, 'spec.name').constraints).to.include.keys('isString');
      expect(detail(err, 'spec.vcpus').constraints).to.include.keys('isInt');
      expect(ran).to.deep.equal([]);
    });

    it('validate nested objects, naming the nested path', async () => {
      const err = await validationErrorOf(call('create', { spec: { name: 'ok', vcpus: 1, address: { city: 'far too long a name' } } }));
      expect(detail(err, 'spec.address.city').constraints).to.have.property('isLength');
      expect(err.details.map((d) => d.property)).to.deep.equal(['spec.address.city']);
      expect(ran).to.deep.equal([]);
    });

    it('validate arrays of DTOs element by element, naming the index', async () => {
      const err = await validationErrorOf(call('create', { spec: { name: 'ok', vcpus: 1, disks: [{ sizeGb: 5 }, { sizeGb: 0 }, { sizeGb: 'big' }] } }));
      expect(detail(err, 'spec.disks.1.sizeGb').constraints).to.have.property('min');
      expect(detail(err, 'spec.disks.2.sizeGb').constraints).to.have.property('isInt');
      expect(err.details.some((d) => d.property.startsWith('spec.disks.0'))).to.equal(false);
      expect(ran).to.deep.equal([]);
    });

    it('refuse a nested DTO field of the wrong shape (an array that is not one)', async () => {
      const err = await validationErrorOf(call('create', { spec: { name: 'ok', vcpus: 1, disks: 'none' } }));
      expect(detail(err, 'spec.disks').constraints).to.have.property('isArray');
      expect(ran).to.deep.equal([]);
    });

    it('refuse an invalid Date inside a DTO', async () => {
      const err = await validationErrorOf(call('create', { spec: { name: 'ok', vcpus: 1, notBefore: 'not a date' } }));
      expect(detail(err, 'spec.notBefore').constraints).to.have.property('isDate');
      expect(ran).to.deep.equal([]);
    });

    it('refuse a value that is not an object at all (string, array, null)', async () => {
      for (const bad of ['a string', [1, 2], null, 42]) {
        const err = await validationErrorOf(call('create', { spec: bad }));
        expect(detail(err, 'spec').constraints, JSON.stringify(bad)).to.be.an('object');
      }
      expect(ran).to.deep.equal([]);
    });

    it('list the problems of several parameters in one error', async () => {
      const err = await validationErrorOf(call('twoSpecs', { first: { name: '', vcpus: 1 }, second: { name: 'b', vcpus: 0 } }));
      expect(detail(err, 'first.name').constraints).to.have.property('isLength');
      expect(detail(err, 'second.vcpus').constraints).to.have.property('min');
      expect(ran).to.deep.equal([]);
    });

    it('the error message itself names the failing properties', async () => {
      const err = await validationErrorOf(svc.create({ name: '', vcpus: 0 }));
      expect(err.message).to.include('spec.name').and.to.include('spec.vcpus');
    });
  });

  describe('Number, String and Boolean parameters', () => {
    it('accept values of the declared type', async () => {
      expect(await svc.add(2, 3)).to.equal(5);
      expect(await svc.greet('ann', true)).to.equal('HELLO ANN');
      expect(ran).to.deep.equal(['add', 'greet']);
    });

    it('are checked, never coerced: "1" is not a number', async () => {
      const err = await validationErrorOf(call('add', { a: '1', b: 2 }));
      expect(err.details).to.have.length(1);
      expect(err.details[0].property).to.equal('a');
      expect(err.details[0].constraints).to.have.property('isNumber');
      expect(ran).to.deep.equal([]);
    });

    it('a string parameter refuses a number; a boolean refuses "true" and 1', async () => {
      const e1 = await validationErrorOf(call('greet', { name: 5 }));
      expect(detail(e1, 'name').constraints).to.have.property('isString');
      const e2 = await validationErrorOf(call('greet', { name: 'x', loud: 'true' }));
      expect(detail(e2, 'loud').constraints).to.have.property('isBoolean');
      const e3 = await validationErrorOf(call('greet', { name: 'x', loud: 1 }));
      expect(detail(e3, 'loud').constraints).to.have.property('isBoolean');
      expect(ran).to.deep.equal([]);
    });

    it('null is not a number either', async () => {
      const err = await validationErrorOf(call('add', { a: null, b: 1 }));
      expect(detail(err, 'a').constraints).to.have.property('isNumber');
      expect(ran).to.deep.equal([]);
    });

    it('every bad parameter is reported, not only the first', async () => {
      const err = await validationErrorOf(call('add', { a: 'x', b: true }));
      expect(err.details.map((d) => d.property).sort()).to.deep.equal(['a', 'b']);
      expect(ran).to.deep.equal([]);
    });

    it('an untyped (unknown) parameter passes whatever JSON value was sent', async () => {
      expect(await call('anything', { value: { deep: [1, 'two', null] } })).to.deep.equal({ deep: [1, 'two', null] });
    });
  });

  describe('Date parameters', () => {
    it('accept an ISO 8601 string and hand the method a Date', async () => {
      const iso = '2024-02-29T12:34:56.789Z';
      expect(await call('when', { at: iso })).to.deep.equal({ isDate: true, time: Date.parse(iso) });
    });

    it('accept a Date from a typed proxy (sent as its ISO string)', async () => {
      const at = new Date('2020-01-01T00:00:00Z');
      expect(await svc.when(at)).to.deep.equal({ isDate: true, time: at.getTime() });
    });

    it('refuse strings that are not ISO dates, numbers and impossible dates', async () => {
      for (const bad of ['yesterday', '01/02/2024', 1700000000000, '2024-13-01', '2023-02-30']) {
        const err = await validationErrorOf(call('when', { at: bad }));
        expect(detail(err, 'at').constraints, JSON.stringify(bad)).to.have.property('isDate');
      }
      expect(ran).to.deep.equal([]);
    });
  });

  describe('argument names', () => {
    it('a missing required argument is refused, named, and the method never runs', async () => {
      const err = await validationErrorOf(svc.add(1, undefined as unknown as number));
      expect(err.details).to.deep.equal([{ property: 'b', constraints: err.details[0].constraints }]);
      expect(err.details[0].constraints).to.have.property('isDefined');
      expect(ran).to.deep.equal([]);
    });

    it('all missing arguments are reported', async () => {
      const err = await validationErrorOf(call('add', {}));
      expect(err.details.map((d) => d.property).sort()).to.deep.equal(['a', 'b']);
      expect(ran).to.deep.equal([]);
    });

    it('a missing DTO argument is refused', async () => {
      const err = await validationErrorOf(call('create', {}));
      expect(detail(err, 'spec').constraints).to.have.property('isDefined');
      expect(ran).to.deep.equal([]);
    });

    it('a parameter with a default may be left out, and the default applies', async () => {
      expect(await svc.greet('bob')).to.equal('hello bob');
      expect(await call('greet', { name: 'bob' })).to.equal('hello bob');
    });

    it('an unknown argument name is refused and named, even next to valid ones', async () => {
      const err = await validationErrorOf(call('add', { a: 1, b: 2, c: 3 }));
      expect(err.details).to.have.length(1);
      expect(err.details[0].property).to.equal('c');
      expect(err.details[0].constraints).to.have.property('unknownArgument');
      expect(ran).to.deep.equal([]);
    });

    it('a misspelt name is reported both as unknown and as missing', async () => {
      const err = await validationErrorOf(call('add', { a: 1, B: 2 }));
      expect(detail(err, 'B').constraints).to.have.property('unknownArgument');
      expect(detail(err, 'b').constraints).to.have.property('isDefined');
      expect(ran).to.deep.equal([]);
    });

    it('@RpcMethod({ params }) names the arguments on the wire, and types still apply by position', async () => {
      expect(await call('renamed', { x: 1, y: 'one' })).to.equal('1:one');
      const err = await validationErrorOf(call('renamed', { a: 1, b: 'one' }));
      expect(err.details.map((d) => d.property).sort()).to.deep.equal(['a', 'b', 'x', 'y']);
      const typed = await validationErrorOf(call('renamed', { x: 'one', y: 1 }));
      expect(detail(typed, 'x').constraints).to.have.property('isNumber');
      expect(detail(typed, 'y').constraints).to.have.property('isString');
    });

    it('the typed proxy sends positional values under the declared names', async () => {
      expect(await svc.renamed(4, 'four')).to.equal('4:four');
    });
  });

  describe('casts', () => {
    it('a cast with invalid arguments never runs the method either', async () => {
      await app.client.cast(topic, { method: 'add', args: { a: 'x', b: 1 } });
      // A correct call queued behind it proves the cast was consumed (and refused) by now.
      await svc.add(1, 1);
      expect(ran).to.deep.equal(['add']);
    });
  });
});
