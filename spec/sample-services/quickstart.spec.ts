import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';

const ROOT = join(__dirname, '..', '..', '..');

describe('the README quick start', () => {
  it('is exactly sample-services/quickstart.ts', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const source = readFileSync(join(ROOT, 'sample-services', 'quickstart.ts'), 'utf8');
    expect(readme).to.include('```ts\n' + source + '```');
  });

  it('runs and prints what it promises', async () => {
    const env = { ...process.env };
    delete env.RPC_TRANSPORT_URL; // the memory broker, as a first-time user gets it
    const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'dist', 'sample-services', 'quickstart.js')], { env, timeout: 20_000 });
    const lines = stdout.trim().split('\n');
    expect(lines).to.include.members(['hello, world', '[info] one-way', '[warn] to every instance', 'hello, host', '3', '2', '1', 'hello, kwargs']);
  });
});
