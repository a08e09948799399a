/** Runs the registry scale measurements in a child process (see children/registry-scale.ts). */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ScaleResult } from './children/registry-scale.ts';
import { stopChild, tail, track } from './processes.ts';

export type { ScaleResult };

export async function runRegistryScale(sizes: number[], reloadIterations: number, timeoutMs = 240_000): Promise<ScaleResult[]> {
  const path = fileURLToPath(new URL('./children/registry-scale.ts', import.meta.url));
  const child = fork(path, [JSON.stringify({ sizes, reloadIterations })], { execArgv: ['--expose-gc'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  track(child);
  const output: string[] = [];
  tail(child, output);
  try {
    return await new Promise<ScaleResult[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`registry scale did not finish within ${timeoutMs} ms`)), timeoutMs);
      child.on('message', (m: { type?: string; results?: ScaleResult[] }) => {
        if (m.type === 'result' && m.results) {
          clearTimeout(timer);
          resolve(m.results);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`registry scale exited (${signal ?? code}): ${output.slice(-5).join(' | ')}`));
      });
    });
  } finally {
    await stopChild(child);
  }
}
