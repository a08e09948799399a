import type { Clock, ListPage, Transport, WatchEvent } from '@devstack/registry-kubernetes';

/** A clock whose timers fire only when the test advances it. */
export class FakeClock implements Clock {
  time = 1_000_000;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  #id = 0;

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.#timers.set(id, { at: this.time + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Delays of the timers now pending, soonest first. */
  pending(): number[] {
    return [...this.#timers.values()].map((t) => t.at - this.time).sort((a, b) => a - b);
  }

  /** Moves time forward, firing due timers in order, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      const due = [...this.#timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.time = due[1].at;
      due[1].fn();
    }
    this.time = end;
    await settle();
  }
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

interface Obj {
  metadata: { name: string; namespace: string; resourceVersion: string };
  value?: string;
}

export function obj(name: string, rv: number, value?: string): Obj {
  return { metadata: { name, namespace: 'ns', resourceVersion: String(rv) }, ...(value === undefined ? {} : { value }) };
}

interface OpenWatch {
  resourceVersion: string;
  timeoutSeconds: number;
  emit(event: WatchEvent): void;
  close(error?: unknown): void;
  stopped: boolean;
}

/** A transport the test drives: lists answer from `items`, watches are handed to the test. */
export class FakeTransport implements Transport<Obj> {
  items: Obj[] = [];
  resourceVersion = '10';
  lists: Array<{ resourceVersion?: string | undefined; continue?: string | undefined }> = [];
  watches: OpenWatch[] = [];
  /** Errors the next lists or watches fail with, in order. */
  listFailures: unknown[] = [];
  watchFailures: unknown[] = [];
  pageSize = Infinity;

  async list(request: { resourceVersion?: string | undefined; continue?: string | undefined; limit: number }): Promise<ListPage<Obj>> {
    this.lists.push({ resourceVersion: request.resourceVersion, continue: request.continue });
    const failure = this.listFailures.shift();
    if (failure !== undefined) throw failure;
    const start = request.continue === undefined ? 0 : Number(request.continue);
    const end = Math.min(this.items.length, start + Math.min(this.pageSize, request.limit));
    return { items: this.items.slice(start, end), resourceVersion: this.resourceVersion, continue: end < this.items.length ? String(end) : undefined };
  }

  async watch(request: { resourceVersion: string; timeoutSeconds: number }, onEvent: (event: WatchEvent) => void, onClose: (error?: unknown) => void): Promise<() => void> {
    const failure = this.watchFailures.shift();
    if (failure !== undefined) throw failure;
    let closed = false;
    const w: OpenWatch = {
      resourceVersion: request.resourceVersion,
      timeoutSeconds: request.timeoutSeconds,
      stopped: false,
      emit: (event) => {
        if (!closed) onEvent(event);
      },
      close: (error) => {
        if (closed) return;
        closed = true;
        onClose(error);
      },
    };
    this.watches.push(w);
    return () => {
      w.stopped = true;
      w.close(new Error('aborted'));
    };
  }

  get last(): OpenWatch {
    return this.watches[this.watches.length - 1]!;
  }
}

export function httpError(status: number): Error {
  return Object.assign(new Error(`HTTP-Code: ${status}`), { code: status });
}
