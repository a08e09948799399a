/*
 * A native load generator (wrk, h2load) as a child process run to its end. Its CPU is its own
 * rusage, read once it has exited: unlike autocannon it does not run in this process.
 */
import { spawn } from 'node:child_process';
import { tail, track } from './processes.ts';
import { exitedChildrenCpuSeconds } from './procstat.ts';

/** Throws with the end of its stderr (or stdout) when the client exits other than 0. */
export async function runClient(name: string, bin: string, args: string[], duration: number): Promise<{ stdout: string; clientCpuSeconds: number }> {
  const cpuBefore = exitedChildrenCpuSeconds();
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  // Bounded even if the client hangs: its own duration, plus slack beyond wrk's 10 s request timeout.
  const timer = setTimeout(() => child.kill('SIGKILL'), (duration + 20) * 1000);
  let stdout = '';
  const stderr: string[] = [];
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  tail(child, stderr);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve([c, s]));
  }).finally(() => clearTimeout(timer));
  const clientCpuSeconds = exitedChildrenCpuSeconds() - cpuBefore;
  if (code !== 0) throw new Error(`${name} exited (${signal ?? code}): ${stderr.slice(-4).join(' | ') || stdout.trim().split('\n').pop() || 'no output'}`);
  return { stdout, clientCpuSeconds };
}
