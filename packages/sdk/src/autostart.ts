/* What `register` runs: the SDK from the environment, the inbound and gRPC coverage `init()` leaves to code. */
import { ConfigError } from '@devstack/core';
import { routeGrpc, routeServers } from './auto.js';
import { optionsFromEnv } from './env.js';
import { init, type DevstackSdk } from './init.js';

function warn(problems: readonly string[]): void {
  process.stderr.write(`devstack: not started, the app runs unrouted: ${problems.join('; ')}\n`);
}

/** Starts the SDK as `register` does, from `env`; undefined when a problem kept it from starting. */
export function startFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): DevstackSdk | undefined {
  const { options, problems } = optionsFromEnv(env);
  if (problems.length > 0) {
    warn(problems);
    return undefined;
  }
  let sdk: DevstackSdk;
  try {
    sdk = init(options);
  } catch (error) {
    warn(error instanceof ConfigError ? error.problems : [(error as Error).message]);
    return undefined;
  }
  routeServers();
  routeGrpc(sdk.proxyless);
  return sdk;
}

