import { expect } from 'chai';
import { runDemo } from '../../sample-services/demo';

describe('the demo of `npm start` on memory://', () => {
  it('prints a transcript of every verb and failure', async () => {
    const lines: string[] = [];
    await runDemo('memory://', (l) => lines.push(l));
    const out = lines.join('\n');
    expect(out).to.match(/whoami\(\) x6 answered by: compute-\d, compute-\d, compute-\d, compute-\d, compute-\d, compute-\d/);
    expect(out).to.include('compute-1, compute-2');
    expect(out).to.match(/schedule\(\) -> i-1@compute-\d on compute-\d, createdAt is a Date, adminPass stayed on the server/);
    expect(out).to.match(/\$to\('compute-2'\)\.whoami\(\) -> compute-2/);
    expect(out.match(/cache refreshed/g)).to.have.length(2);
    expect(out.match(/console line/g)).to.have.length(3);
    expect(out).to.match(/hard reboot of/);
    expect(out).to.match(/timeout +-> RpcTimeoutError/);
    expect(out).to.match(/unknown method +-> NoSuchMethodError/);
    expect(out).to.match(/invalid DTO +-> ValidationError/);
    expect(out).to.match(/registered error +-> QuotaExceeded: .* limit=16/);
    expect(out).to.match(/stopped cleanly/);
  });
});
