/** The bodies of `GET /bytes/<n>` on both upstream stubs: one buffer per size, made once, so an answer allocates nothing. */
const bodies = new Map<number, Buffer>();
const MAX_BODY = 64 * 1024 * 1024;

/** The n of `/bytes/<n>`; undefined for any other path or a size over the limit (a 404). */
export function requestedSize(path: string): number | undefined {
  const match = /^\/bytes\/(\d+)$/.exec(path);
  const size = match ? Number(match[1]) : -1;
  return size < 0 || size > MAX_BODY ? undefined : size;
}

export function body(size: number): Buffer {
  let buf = bodies.get(size);
  if (!buf) {
    buf = Buffer.alloc(size, 'x');
    bodies.set(size, buf);
  }
  return buf;
}
