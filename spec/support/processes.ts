/** Servers in other OS processes (Courier workers, Python oslo servers) for the specs. */
import { type ChildProcess, spawn } from 'node:child_process';

/** Spawn `command`, resolve once it prints READY on stdout; stderr is kept for the error. */
export function spawnReady(what: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env, ms = 30_000): Promise<ChildProcess> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${err}`)), ms);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('READY')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => reject(new Error(`${what} exited with ${code}: ${err}`)));
  });
}

/** SIGTERM (graceful stop), then SIGKILL if it is still there after `graceMs`. */
export function stopProcess(child: ChildProcess, graceMs = 15_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), graceMs).unref();
  });
}
