import { expect } from 'chai';
import { RpcError, RpcMethod, RpcService } from '../../index';
import { methodMetadata, serviceMetadata } from '../../decorators/metadata';
import { readParamNames } from '../../decorators/param-names';

describe('decorators', () => {
  it('record the service topic and options', () => {
    @RpcService('deco-svc', { version: '2.4', namespace: 'ns', exchange: 'nova', concurrency: 3 })
    class Svc {}
    expect(serviceMetadata(Svc)).to.deep.equal({ topic: 'deco-svc', version: '2.4', namespace: 'ns', exchange: 'nova', concurrency: 3 });
  });

  it('default the version to 1.0', () => {
    @RpcService('deco-default')
    class Svc {}
    expect(serviceMetadata(Svc)?.version).to.equal('1.0');
  });

  it('read argument names once, defaults included, from every kind of method', () => {
    class Svc {
      @RpcMethod() plain(a: string, b: number) { return [a, b]; }
      @RpcMethod() async withDefaults(id: string, hard = false, opts = { x: [1, 2], y: '(,)' }) { return [id, hard, opts]; }
      @RpcMethod() async *gen(n: number) { yield n; }
      @RpcMethod() none() {}
    }
    const m = methodMetadata(Svc);
    expect(m.get('plain')?.params).to.deep.equal([{ name: 'a', optional: false }, { name: 'b', optional: false }]);
    expect(m.get('withDefaults')?.params.map((p) => [p.name, p.optional])).to.deep.equal([['id', false], ['hard', true], ['opts', true]]);
    expect(m.get('gen')?.streams).to.equal(true);
    expect(m.get('plain')?.streams).to.equal(false);
    expect(m.get('none')?.params).to.deep.equal([]);
  });

  it('refuse a declaration they cannot read, naming the class and method', () => {
    expect(() => {
      class Bad {
        @RpcMethod() destructured({ a }: { a: number }) { return a; }
      }
      return Bad;
    }).to.throw(TypeError, /Bad\.destructured.*cannot read the argument names/);
    expect(() => {
      class Rest {
        @RpcMethod() many(...xs: number[]) { return xs; }
      }
      return Rest;
    }).to.throw(TypeError, /Rest\.many/);
  });

  it('take names from params when given, overriding the declaration', () => {
    class Svc {
      @RpcMethod({ params: ['spec'] }) create({ name }: { name: string }) { return name; }
      @RpcMethod({ params: ['x', 'y'] }) renamed(a: number, b = 2) { return a + b; }
    }
    const m = methodMetadata(Svc);
    expect(m.get('create')?.params).to.deep.equal([{ name: 'spec', optional: false }]);
    expect(m.get('renamed')?.params).to.deep.equal([{ name: 'x', optional: false }, { name: 'y', optional: true }]);
  });

  it('refuse `_` names, which oslo never dispatches', () => {
    expect(() => {
      class Svc {
        @RpcMethod() _hidden() {}
      }
      return Svc;
    }).to.throw(TypeError, /Svc\._hidden.*never callable/);
  });

  it('refuse bad topics, versions and options at decoration time', () => {
    expect(() => RpcService('')(class A {})).to.throw(TypeError, /topic/);
    expect(() => RpcService('x', { version: '1' })(class B {})).to.throw(TypeError, /B: version/);
    expect(() => RpcService('x', { concurrency: 0 })(class C {})).to.throw(TypeError, /concurrency/);
    expect(() => {
      class D {
        @RpcMethod({ since: 'soon' }) m() {}
      }
      return D;
    }).to.throw(TypeError, /D\.m: since/);
  });

  it('inherit decorated methods from a base class; a subclass may override them', () => {
    class Base {
      @RpcMethod() ping() { return 'base'; }
      @RpcMethod() shared(a: number) { return a; }
    }
    class Child extends Base {
      @RpcMethod() override shared(b: number) { return b; }
      @RpcMethod() own() {}
    }
    const m = methodMetadata(Child);
    expect([...m.keys()].sort()).to.deep.equal(['own', 'ping', 'shared']);
    expect(m.get('shared')?.params[0].name).to.equal('b');
  });

  it('register error classes by name and refuse two with one name', () => {
    @RpcError()
    class DecoDuplicate extends Error {}
    expect(() => {
      const make = () => class DecoDuplicate extends Error {};
      RpcError()(make());
    }).to.throw(TypeError, /two error classes are named DecoDuplicate/);
    expect(() => RpcError()(class NotAnError {})).to.throw(TypeError, /must extend Error/);
    void DecoDuplicate;
  });

  it('read parameter lists with comments, strings and nested brackets', () => {
    function f(a: unknown /* the (first) */, b = ')', c = [1, { d: '}' }], e = `x${1}`) {
      return [a, b, c, e];
    }
    expect(readParamNames(f)).to.deep.equal([
      { name: 'a', optional: false },
      { name: 'b', optional: true },
      { name: 'c', optional: true },
      { name: 'e', optional: true },
    ]);
  });
});
