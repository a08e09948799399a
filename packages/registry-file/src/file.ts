import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { parse, YAMLParseError } from 'yaml';
import { buildSnapshot, DevstackError, Emitter, RegistryValidationError, type RegistrySource, type ReloadOutcome, type Snapshot } from '@devstack/core';

export class RegistryFileError extends DevstackError {
  readonly path: string;

  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('DEVSTACK_REGISTRY_FILE', `${path}: ${message}`, options);
    this.path = path;
  }
}

export interface FileSourceOptions {
  /** YAML or JSON (JSON is YAML), `services: { name: { base, features } }`. */
  path: string;
  /**
   * Quiet time after the last change event before the file is read again: editors and ConfigMap
   * updates write in several steps. Default 20 ms.
   */
  debounceMs?: number;
  /**
   * While change events keep coming (a file rewritten every few milliseconds), the file is read
   * at least this often all the same, so a steady stream of writes cannot hold back every
   * snapshot. Default 1000 ms.
   */
  maxDelayMs?: number;
  /** Clock for snapshot timestamps. */
  now?: () => number;
  /** Timers for the debounce (default: the process's, unref'd); a test passes a fake clock. */
  timers?: Timers;
  /** Whether watching keeps the process alive until `close()`. Default true. */
  persistent?: boolean;
}

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const SYSTEM_TIMERS: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Parses registry text into a snapshot; every problem (YAML syntax or content) at once. */
export function parseRegistry(text: string, meta: { source: string; version?: number; createdAt?: number }): Snapshot {
  let data: unknown;
  try {
    data = parse(text, { prettyErrors: true, uniqueKeys: true, maxAliasCount: 100 });
  } catch (error) {
    if (error instanceof YAMLParseError) {
      const at = error.linePos?.[0];
      const where = at ? `line ${at.line}, column ${at.col}: ` : '';
      const reason = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw new RegistryValidationError([`${where}${reason}`], { source: meta.source, cause: error });
    }
    throw new RegistryValidationError([(error as Error).message], { source: meta.source, cause: error });
  }
  return buildSnapshot(data, meta);
}

/**
 * The embedded default registry: a file, watched. Its directory is watched rather than the file, so
 * an editor's write-and-rename and a Kubernetes ConfigMap's symlink swap are both seen. A change that
 * does not parse or validate is reported through `onError` and the last good snapshot stays.
 */
export class FileSource implements RegistrySource {
  readonly kind = 'file';
  readonly path: string;
  readonly #debounceMs: number;
  readonly #maxDelayMs: number;
  readonly #timers: Timers;
  readonly #now: () => number;
  readonly #persistent: boolean;
  readonly #snapshots = new Emitter<Snapshot>();
  readonly #errors = new Emitter<Error>();
  #snapshot: Snapshot | undefined;
  #lastText: string | undefined;
  /** Why `#lastText` was refused, if it was. */
  #lastError: Error | undefined;
  #watcher: FSWatcher | undefined;
  #timer: unknown;
  /** When the first change event not yet read came. */
  #firstChange: number | undefined;
  #reading: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: FileSourceOptions) {
    this.path = resolvePath(options.path);
    this.#debounceMs = options.debounceMs ?? 20;
    this.#maxDelayMs = options.maxDelayMs ?? 1000;
    this.#timers = options.timers ?? SYSTEM_TIMERS;
    this.#now = options.now ?? Date.now;
    this.#persistent = options.persistent ?? true;
  }

  current(): Snapshot | undefined {
    return this.#snapshot;
  }

  subscribe(listener: (snapshot: Snapshot) => void): () => void {
    return this.#snapshots.add(listener);
  }

  onError(listener: (error: Error) => void): () => void {
    return this.#errors.add(listener);
  }

  async start(): Promise<Snapshot> {
    if (this.#snapshot) return this.#snapshot;
    const text = await this.#read();
    this.#snapshot = parseRegistry(text, { source: this.path, version: 1, createdAt: this.#now() });
    this.#lastText = text;
    const name = basename(this.path);
    this.#watcher = watch(dirname(this.path), { persistent: this.#persistent }, (_event, file) => {
      // Some platforms give no file name; ConfigMaps change `..data`, not the file itself.
      if (file === null || file === name || file.startsWith('..')) this.#schedule();
    });
    this.#watcher.on('error', (error) => this.#errors.emit(new RegistryFileError(this.path, `watch failed: ${error.message}`, { cause: error })));
    return this.#snapshot;
  }

  /**
   * Re-reads the file now (on SIGHUP, say) and resolves with what came of it: a new snapshot
   * published, the same content as the current snapshot, or a refusal reported through `onError`
   * with the last good snapshot kept. Unlike a watched change, an explicit reload of a file that
   * is still invalid reports its problem again, so whoever asked sees why.
   */
  reload(): Promise<ReloadOutcome> {
    const outcome = this.#reading.then(() => this.#reload(true));
    this.#reading = outcome.then(() => undefined);
    return outcome;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#timers.clearTimeout(this.#timer);
    this.#watcher?.close();
    await this.#reading;
    this.#snapshots.clear();
    this.#errors.clear();
  }

  #schedule(): void {
    if (this.#closed) return;
    const now = this.#timers.now();
    this.#firstChange ??= now;
    const wait = Math.max(0, Math.min(this.#debounceMs, this.#firstChange + this.#maxDelayMs - now));
    this.#timers.clearTimeout(this.#timer);
    this.#timer = this.#timers.setTimeout(() => {
      this.#firstChange = undefined;
      this.#reading = this.#reading.then(() => this.#reload(false).then(() => undefined));
    }, wait);
  }

  async #read(): Promise<string> {
    try {
      return await readFile(this.path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
      throw new RegistryFileError(this.path, `cannot read registry: ${why}`, { cause: error });
    }
  }

  async #reload(explicit: boolean): Promise<ReloadOutcome> {
    if (this.#closed || !this.#snapshot) return 'unchanged';
    let text: string;
    try {
      text = await this.#read();
    } catch (error) {
      // A file that is briefly missing mid-rename is not an error worth a snapshot change.
      this.#errors.emit(error as Error);
      return 'refused';
    }
    if (this.#closed) return 'unchanged';
    if (text === this.#lastText) {
      if (!explicit || this.#lastError === undefined) return 'unchanged';
      this.#errors.emit(this.#lastError);
      return 'refused';
    }
    this.#lastText = text;
    try {
      const next = parseRegistry(text, { source: this.path, version: this.#snapshot.version + 1, createdAt: this.#now() });
      this.#lastError = undefined;
      this.#snapshot = next;
      this.#snapshots.emit(next);
      return 'published';
    } catch (error) {
      this.#lastError = error as Error;
      this.#errors.emit(error as Error);
      return 'refused';
    }
  }
}

/** This package's entry for `createRegistrySource` in `@devstack/core`. */
export function createSource(options: FileSourceOptions): FileSource {
  return new FileSource(options);
}
