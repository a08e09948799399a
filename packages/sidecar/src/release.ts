import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { buildConnector as Connector } from 'undici';
import { buildConnector } from './undici.js';

/**
 * Large body buffers are freed as soon as their bytes are written, instead of waiting for a garbage
 * collection. A body buffer's memory lives outside V8's heap, and V8 schedules collections by what
 * JavaScript allocates: a sidecar that moves megabytes while allocating little holds tens of MiB of
 * written bodies at any moment (every pod pays for them), and the full collections that external
 * memory finally forces cost a saturated sidecar a third of its throughput. Only buffers nobody
 * else can reach are freed: a downstream HTTP/1.1 request body's chunks (each its own allocation,
 * read once by undici) and the upstream socket reads undici hands out views of, once every view
 * of one has been written.
 */

/** Smaller buffers are left to the collector: tracking one would cost more than freeing it saves. */
export const RELEASE_MIN_BYTES = 16 * 1024;

type Detachable = ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };

/** Frees a buffer's memory now: every view of it reads as empty from here on. */
function detach(buffer: ArrayBuffer): void {
  try {
    (buffer as Detachable).transfer?.(0);
  } catch {
    // Not detachable (a buffer some embedder pinned): the collector frees it, as before.
  }
}

/**
 * Whether a chunk is a whole buffer of its own. Node's Buffer pool only hands out slices under half
 * its size, so a chunk that spans its entire buffer is never one of them.
 */
function whole(chunk: Buffer): boolean {
  return chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.byteLength >= RELEASE_MIN_BYTES && chunk.buffer instanceof ArrayBuffer;
}

/** The views of one buffer handed out and not yet written; `whole` once its last byte was handed out. */
interface Hold {
  pending: number;
  whole: boolean;
}

const holds = new WeakMap<ArrayBuffer, Hold>();

/**
 * The buffers of upstream socket reads, with where each read's bytes end: Node reads into a buffer
 * of its own and may hand out only its start, so what lies past the end is nobody's.
 */
const upstreamReads = new WeakMap<ArrayBufferLike, number>();

/**
 * For a view of a buffer that only the caller and the writes it makes can reach (a response body
 * chunk undici parsed out of an upstream read): a write callback that frees the buffer once this
 * view and every other view of it handed out have been written, or undefined when the buffer is
 * left to the collector. A write that fails, or never completes, frees nothing.
 */
export function releaseWhenWritten(view: Buffer): ((error?: Error | null) => void) | undefined {
  const buffer = view.buffer as ArrayBuffer;
  const end = upstreamReads.get(buffer);
  if (end === undefined) return undefined;
  let hold = holds.get(buffer);
  if (hold === undefined) holds.set(buffer, (hold = { pending: 0, whole: false }));
  hold.pending++;
  // Views reach the handler in the order of their bytes: this one ends the read, no other follows.
  if (view.byteOffset + view.byteLength === end) hold.whole = true;
  const owner = hold;
  return (error) => {
    if (error) return; // pending never reaches 0: the buffer is the collector's again
    if (--owner.pending === 0 && owner.whole) {
      holds.delete(buffer);
      detach(buffer);
    }
  };
}

/** Chunks of downstream request bodies, marked as they are read: nothing else holds them. */
const bodyChunks = new WeakSet<Buffer>();

function markBodyChunk(chunk: Buffer | string): void {
  if (typeof chunk !== 'string' && whole(chunk)) bodyChunks.add(chunk);
}

const MARKED = Symbol('devstack.release.marked');

/**
 * Marks the chunks of an HTTP/1.1 request body, so the upstream socket that writes one frees it.
 * Call before handing `body` to undici: the marking listener runs before undici's, and the body is
 * paused so that adding it does not start the flow before undici listens.
 */
export function markBody(body: Readable): void {
  const marked = body as Readable & { [MARKED]?: true };
  if (marked[MARKED]) return; // a retry: the first attempt marked it already
  marked[MARKED] = true;
  body.pause();
  body.on('data', markBodyChunk);
}

const socketWrite = Symbol('devstack.release.write');
const socketRead = Symbol('devstack.release.read');
type ReleasingSocket = Socket & { [socketWrite]: Socket['write']; [socketRead]: Socket['read'] };

function freeChunk(this: Buffer, error?: Error | null): void {
  if (!error) detach(this.buffer as ArrayBuffer);
}

/** The upstream socket's write: a marked body chunk is freed once the socket has written it. */
function releasingWrite(this: ReleasingSocket, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
  const write = this[socketWrite] as (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean;
  // undici writes body chunks with no encoding and no callback of its own.
  if (encoding === undefined && bodyChunks.has(chunk as Buffer)) {
    bodyChunks.delete(chunk as Buffer);
    return write.call(this, chunk, freeChunk.bind(chunk as Buffer));
  }
  return write.call(this, chunk, encoding, callback);
}

/**
 * The upstream socket's read: records a chunk that starts a buffer no other Buffer shares, so it
 * may be freed once written. That is a read from the socket, or a concatenation of reads too large
 * for Buffer's pool; a slice of the pool is under half its size, and never recorded.
 */
function recordingRead(this: ReleasingSocket, size?: number): unknown {
  const chunk: unknown = this[socketRead](size);
  // read(n) may leave the rest of a buffer queued; read() (undici's) hands out whole buffers only.
  if (size === undefined && Buffer.isBuffer(chunk) && chunk.byteOffset === 0 && (chunk.byteLength === chunk.buffer.byteLength || chunk.byteLength >= Buffer.poolSize >>> 1) && chunk.byteLength >= RELEASE_MIN_BYTES) {
    upstreamReads.set(chunk.buffer, chunk.byteLength);
  }
  return chunk;
}

/**
 * Makes an upstream socket free what passes through it once written: the marked request body
 * chunks it writes, and (through `releaseWhenWritten`) the reads it hands undici.
 */
export function releaseThrough(socket: Socket): void {
  const releasing = socket as ReleasingSocket;
  releasing[socketWrite] = socket.write;
  releasing[socketRead] = socket.read;
  releasing.write = releasingWrite as Socket['write'];
  releasing.read = recordingRead as Socket['read'];
}

/** undici's own connector, with sockets that free the body chunks they have written. */
export function releasingConnector(options: Connector.BuildOptions): Connector.connector {
  const connect = buildConnector(options);
  return (opts, callback) =>
    connect(opts, (error, socket) => {
      // A failed connect is reported with the error alone.
      if (error === null && socket) releaseThrough(socket);
      (callback as (error: Error | null, socket: Socket | null) => void)(error, socket ?? null);
    });
}
