/*
 * Starting and stopping the target processes. Every target runs in its own process so that the
 * load generator (this process) and each server compete for the CPU as they would on a real host,
 * and so that each one's CPU and memory can be read from /proc.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { ReadyMessage } from './children/ipc.ts';

export interface Target {
  name: string;
  pid: number;
  ports: Record<string, number>;
  child: ChildProcess;
  /** Last lines the process wrote, for error messages. */
  output: string[];
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Keeps the last lines of a stream, so a target that fails can say why. */
export function tail(child: ChildProcess, into: string[], max = 40): void {
  const take = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      into.push(line);
      if (into.length > max) into.shift();
    }
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
}

const stopping = new WeakSet<ChildProcess>();
/** Targets that exited while the harness still needed them, each with why, as far as it said. */
const lost: string[] = [];

/** `name`: a target that should run until stopped (a load client's exit is no loss). */
export function track(child: ChildProcess, name?: string, output?: string[]): void {
  running.add(child);
  child.once('exit', (code, signal) => {
    running.delete(child);
    if (name !== undefined && !stopping.has(child)) lost.push(`${name} exited (${signal ?? code})${output?.length ? `: ${output.slice(-8).join(' | ')}` : ''}`);
  });
}

/**
 * The targets that died since the last call: a failed check then names the cause (a stub that
 * crashed) rather than only its effect (a refused connection).
 */
export function lostTargets(): string[] {
  return lost.splice(0);
}

/** Stops a child: SIGTERM, then SIGKILL if it has not gone after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  stopping.add(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Last resort on interruption: no target outlives the harness. */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Forks one of the Node stubs in ./children and waits for the ports it listens on. */
export async function startNodeChild(name: string, script: string, settings: object, timeoutMs = 15_000): Promise<Target> {
  const path = fileURLToPath(new URL(`./children/${script}`, import.meta.url));
  const child = fork(path, [JSON.stringify(settings)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [] });
  const output: string[] = [];
  track(child, name, output);
  tail(child, output);
  const ports = await new Promise<Record<string, number>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs} ms: ${output.join(' | ')}`)), timeoutMs);
    child.on('message', (message: ReadyMessage) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message.ports);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${signal ?? code}) before listening: ${output.join(' | ')}`));
    });
  });
  return { name, pid: child.pid!, ports, child, output, stop: () => stopChild(child) };
}

/** Sends a message to a forked stub and waits for its answer of the given type. */
export async function ask(target: Target, message: object, answer: string, timeoutMs = 5000): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${target.name}: no ${answer} within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: { type?: string }) => {
      if (m.type === answer) {
        clearTimeout(timer);
        target.child.off('message', onMessage);
        resolve();
      }
    };
    target.child.on('message', onMessage);
    target.child.send(message);
  });
}
