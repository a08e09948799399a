/*
 * A client that writes HTTP/2 frames itself, for what node:http2's client will not send: more
 * streams than the server allows, HEADERS and RST_STREAM pairs in one write (the rapid-reset
 * shape). It reads the server's frames only as far as the tests need: SETTINGS (acknowledged),
 * HEADERS, RST_STREAM and GOAWAY.
 */
import { connect, type Socket } from 'node:net';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const GOAWAY = 0x7;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

export const REFUSED_STREAM = 0x7;
export const CANCEL = 0x8;
export const ENHANCE_YOUR_CALM = 0xb;

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** GET / with `:authority`, in HPACK without Huffman: three static-table entries and one literal. */
export function headersFrame(stream: number, authority: string): Buffer {
  const value = Buffer.from(authority, 'latin1');
  // :method GET (2), :path / (4), :scheme http (6); :authority literal without indexing, name 1.
  const block = Buffer.concat([Buffer.from([0x82, 0x84, 0x86, 0x01, value.length]), value]);
  return frame(HEADERS, END_STREAM | END_HEADERS, stream, block);
}

export function rstFrame(stream: number, code = CANCEL): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(RST_STREAM, 0, stream, payload);
}

export interface RawH2 {
  socket: Socket;
  /** Streams the server answered with HEADERS. */
  answered: Set<number>;
  /** RST_STREAM codes the server sent, by stream. */
  resets: Map<number, number>;
  /** The GOAWAY's error code, once one arrived. */
  goaway: number | undefined;
  /** Resolves when the server closed the connection. */
  closed: Promise<void>;
  /** Resolves once `test` holds (checked on every frame) or the connection closed. */
  until(test: () => boolean): Promise<void>;
}

/**
 * Opens a connection (to a port, or over an open socket such as a CONNECT tunnel), sends the
 * preface and an empty SETTINGS frame. `ack` acknowledges the server's SETTINGS (off: the server's
 * limits stay pending, and a stream over them is refused rather than a connection error).
 */
export function rawH2(target: number | Socket, options: { ack?: boolean } = {}): Promise<RawH2> {
  const socket = typeof target === 'number' ? connect(target, '127.0.0.1') : target;
  const waiters: (() => void)[] = [];
  const client: RawH2 = {
    socket,
    answered: new Set(),
    resets: new Map(),
    goaway: undefined,
    closed: new Promise((resolve) => socket.once('close', () => resolve())),
    until(test) {
      if (test() || socket.destroyed) return Promise.resolve();
      return new Promise((resolve) => waiters.push(() => (test() || socket.destroyed) && (resolve(), true)));
    },
  };
  socket.on('error', () => undefined);
  let buffered = Buffer.alloc(0);
  const check = () => {
    for (let i = waiters.length - 1; i >= 0; i--) if ((waiters[i] as () => boolean | void)()) waiters.splice(i, 1);
  };
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 9) {
      const length = buffered.readUIntBE(0, 3);
      if (buffered.length < 9 + length) break;
      const type = buffered[3]!;
      const flags = buffered[4]!;
      const stream = buffered.readUInt32BE(5) & 0x7fffffff;
      const payload = buffered.subarray(9, 9 + length);
      buffered = buffered.subarray(9 + length);
      if (type === SETTINGS && (flags & 1) === 0 && options.ack !== false) socket.write(frame(SETTINGS, 1, 0));
      else if (type === HEADERS) client.answered.add(stream);
      else if (type === RST_STREAM) client.resets.set(stream, payload.readUInt32BE(0));
      else if (type === GOAWAY) client.goaway = payload.readUInt32BE(4);
    }
    check();
  });
  socket.once('close', check);
  socket.resume();
  return new Promise((resolve, reject) => {
    const start = () => {
      socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
      resolve(client);
    };
    if (typeof target === 'number') {
      socket.once('connect', start);
      socket.once('error', reject);
    } else start();
  });
}

/** A `CONNECT authority` tunnel through a sidecar's outbound listener, once it is established. */
export function tunnel(port: number, authority: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    let got = '';
    const onData = (chunk: Buffer) => {
      got += chunk.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.pause();
      if (!got.startsWith('HTTP/1.1 200')) return reject(new Error(`tunnel refused: ${got}`));
      if (end + 4 < got.length) socket.unshift(Buffer.from(got.slice(end + 4), 'latin1'));
      resolve(socket);
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}
