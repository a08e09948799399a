/*
 * The demo's SQS server: fauxqs (an SQS/SNS emulator from npm) in memory, on HOST:PORT only.
 * fauxqs' own start function binds every interface; its app is listened on here instead, so the
 * demo stays on the loopback address. Queues are created by their users (CreateQueue is idempotent).
 */
import { buildApp } from 'fauxqs';

const host = process.env['HOST'] || '127.0.0.1';
const port = Number(process.env['PORT'] ?? 4566);
const app = buildApp({ logger: false });

let address: string;
try {
  address = await app.listen({ port, host });
} catch (error) {
  const why = (error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? `port ${port} is already in use` : (error as Error).message;
  process.stderr.write(`sqs: cannot listen on ${host}:${port}: ${why}\n`);
  process.exit(1);
}

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  // fauxqs closes its connections on close (long polls included), so this is quick.
  void app.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log(JSON.stringify({ msg: 'listening', service: 'sqs', address }));
