import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import './proxy.types';

const ROOT = join(__dirname, '..', '..', '..');

describe('typed proxies (type level)', () => {
  it('compile the correct uses in spec/types/proxy.types.ts (checked by the build itself)', () => {
    // Loading the compiled module proves it was emitted; its @ts-expect-error lines
    // would have failed `tsc -p .` if any misuse had compiled.
  });

  it('reject a wrong argument type, a missing argument and an unknown method', async function () {
    this.timeout(60_000);
    const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
    const fixture = join(ROOT, 'spec', 'types', 'fixtures', 'misuse.ts');
    const args = ['--ignoreConfig', '--noEmit', '--strict', '--experimentalDecorators', '--emitDecoratorMetadata', '--target', 'ES2022', '--module', 'commonjs', '--skipLibCheck', '--types', 'node', fixture];
    const out = await promisify(execFile)(tsc, args, { cwd: ROOT }).then(
      () => '',
      (err: { stdout?: string }) => err.stdout ?? '',
    );
    const errors = out.split('\n').filter((l) => l.includes('misuse.ts(') && l.includes('error TS'));
    expect(errors, out).to.have.length(3);
    expect(errors[0]).to.match(/misuse\.ts\(8,/);
    expect(errors[1]).to.match(/misuse\.ts\(9,/);
    expect(errors[2]).to.match(/misuse\.ts\(10,.*destroy/);
  });
});
