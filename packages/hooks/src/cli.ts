#!/usr/bin/env node
import { main } from './run.js';

main(process.argv.slice(2), { env: process.env, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`devstack-hooks: unexpected error: ${error.stack ?? error.message}\n`);
    process.exitCode = 1;
  },
);
