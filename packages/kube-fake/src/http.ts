import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeObject } from './types.js';
import { KubeApiError, type StatusBody, badRequest, failure } from './status.js';
import { PROTOBUF, decodeProtobuf } from './protobuf.js';

/** The real server's request body limit. */
const MAX_BODY = 3 * 1024 * 1024;

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
  res.end(text);
}

export function sendError(res: ServerResponse, error: unknown): void {
  const status: StatusBody =
    error instanceof KubeApiError ? error.status : failure(500, 'InternalError', `Internal error occurred: ${(error as Error)?.message ?? error}`).status;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (status.details?.retryAfterSeconds) res.setHeader('Retry-After', String(status.details.retryAfterSeconds));
  sendJson(res, status.code, status);
}

export async function readRaw(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw failure(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export const mediaType = (req: IncomingMessage) => (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();

export async function readBody(req: IncomingMessage): Promise<string> {
  return (await readRaw(req)).toString('utf8');
}

export async function readJson(req: IncomingMessage): Promise<KubeObject> {
  const type = mediaType(req);
  if (type === PROTOBUF) return decodeProtobuf(await readRaw(req));
  if (type !== 'application/json' && type !== '*/*') {
    throw failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, ${PROTOBUF}`);
  }
  const text = await readBody(req);
  try {
    return JSON.parse(text) as KubeObject;
  } catch (cause) {
    throw new KubeApiError(badRequest(`the object provided is unrecognized: ${(cause as Error).message}`).status, { cause });
  }
}

