/*
 * `npm start`: the whole demo fleet on this machine, an edge on 127.0.0.1:8080, a table of curl
 * commands to try, and Ctrl-C to stop everything.
 */
import { rm } from 'node:fs/promises';
import { startFleet, FleetError, type Fleet } from './fleet.ts';
import { CONSUMER, DOMAIN, EVENTS_QUEUE, FEATURES, PUBLISHER, describeEvent, describePath } from './plan.ts';

const HELP = `Usage: npm start [-- --port N]

Starts the devstack demo: web -> orders -> payments over HTTP, orders -> inventory over gRPC, and
${PUBLISHER} -> ${CONSUMER} through the SQS queue ${EVENTS_QUEUE} (an SQS server the demo starts, fauxqs).
Base copies and the feature copies ${Object.entries(FEATURES).map(([key, services]) => `${key} (${services.join(', ')})`).join(' and ')},
a sidecar next to each (orders runs proxyless through the SDK), and an edge for ${DOMAIN}
and <key>.${DOMAIN}.

  --port N     the edge's port (default 8080; 0 picks a free one)   DEVSTACK_DEMO_PORT
  -h, --help   this text
`;

function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): { help: true } | { help: false; port: number } {
  let raw = env['DEVSTACK_DEMO_PORT'] || '8080';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return { help: true };
    if (arg === '--port') raw = argv[++i] ?? '';
    else if (arg.startsWith('--port=')) raw = arg.slice('--port='.length);
    else throw new FleetError('DEVSTACK_DEMO_BAD_OPTION', `unknown argument ${JSON.stringify(arg)}`);
  }
  const port = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new FleetError('DEVSTACK_DEMO_BAD_OPTION', `--port must be a number from 0 to 65535, got ${JSON.stringify(raw)}`);
  return { help: false, port };
}

function table(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `  ${a.padEnd(width)}   ${b}`).join('\n');
}

function banner(fleet: Fleet): string {
  const { port, admin } = fleet.plan.edge;
  const url = (sub?: string) => `http://${sub ? `${sub}.` : ''}${DOMAIN}:${port}/`;
  const curls: [string, string][] = [
    [`curl -s ${url()}`, describePath(undefined)],
    [`curl -s ${url('feature1')}`, describePath('feature1')],
    [`curl -s -H 'uber-ctx-key: feature1' ${url()}`, describePath('feature1')],
    [`curl -s -H 'uber-ctx-key: feature2' ${url()}`, describePath('feature2')],
    [`curl -s -H 'baggage: uber-ctx-key=feature2' ${url()}`, 'the same, W3C baggage carrier'],
    [`curl -s -H 'uberctx-uber-ctx-key: feature1' ${url()}`, 'feature1, Jaeger baggage carrier'],
    [`curl -s -H 'uber-ctx-key: nope' ${url()}`, 'unknown key: base everywhere'],
    [`curl -s ${url('feature1')} | grep -o '"grpc":{[^}]*}'`, "the gRPC hop alone: inventory's copy that answered orders"],
    [`curl -si ${url('feature2')}`, 'x-devstack-lane: the lane that answered'],
  ];
  // The async hop: the answer waits for the worker and names the lane that processed the event.
  const events: [string, string][] = [
    [`curl -s -X POST -H 'uber-ctx-key: feature1' ${url()}events`, describeEvent('feature1')],
    [`curl -s -X POST ${url()}events`, `${describeEvent(undefined)} (no key)`],
    [`curl -s -X POST -H 'uber-ctx-key: feature2' ${url()}events`, `${describeEvent('feature2')} (no worker copy for feature2)`],
    [`curl -s -X POST ${url('feature1')}events | grep -o '"processed":{[^}]*}'`, 'the lane that processed it, alone'],
  ];
  const h = fleet.plan.host;
  const admins: [string, string][] = [[`edge`, `http://${h}:${admin}/routes`]];
  for (const i of fleet.plan.instances) {
    const name = `${i.service}@${i.lane}`;
    const how = i.appPort === undefined ? `a consumer of ${EVENTS_QUEUE} (no port; the SDK decides its lane from the registry)` : `proxyless (the SDK routes in the app; no sidecar)`;
    admins.push([name, i.sidecar ? `http://${h}:${i.sidecar.admin}/routes` : how]);
  }
  return [
    `devstack demo: ready on ${url()}`,
    '',
    table(curls),
    '',
    `Events (POST /events on web: published with the request's key, answered once a worker lane processed it):`,
    table(events),
    '',
    `Sidecar admin (also /healthz /readyz /metrics /resolve?service=orders&key=feature2):`,
    table(admins),
    '',
    `SQS:      ${fleet.sqsUrl}/ (fauxqs; queue ${EVENTS_QUEUE}; any credentials)`,
    `Registry: ${fleet.registryPath} (edits are picked up live; "ready": false on worker's feature1 sends its events to base)`,
    `Logs:     ${fleet.dir}/*.log`,
    `Ctrl-C stops everything.`,
    '',
  ].join('\n');
}

/**
 * npm passes a SIGTERM or SIGINT sent to it on to its script's shell only; the `npm start` script
 * `exec`s this process so that it is that shell. A parent that goes away without passing a signal
 * on (npm killed outright, a wrapper shell that does not exec) would leave this process and the
 * fleet running. No event says that a parent is gone, so its id is watched; when it changes, this
 * process signals itself and stops as it does on Ctrl-C.
 */
function stopWithParent(): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, 250);
  timer.unref();
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2), process.env);
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const started = Date.now();
  stopWithParent();
  process.stdout.write(`devstack demo: starting the fleet (edge on ${args.port ? `127.0.0.1:${args.port}` : 'a free port'})...\n`);
  // A signal during start-up: let startFleet finish or fail, then stop below.
  let signalled: string | undefined;
  const early = (signal: string) => (signalled = signal);
  process.on('SIGINT', early).on('SIGTERM', early);
  let fleet: Fleet;
  try {
    fleet = await startFleet({ port: args.port });
  } catch (error) {
    // Ctrl-C reaches the children too (same process group): their exit is not the failure to report.
    if (signalled === undefined) throw error;
    if (error instanceof FleetError && error.dir !== undefined) await rm(error.dir, { recursive: true, force: true });
    process.stdout.write(`devstack demo: ${signalled} during start-up; stopped.\n`);
    return 0;
  }
  process.off('SIGINT', early).off('SIGTERM', early);

  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    // Idempotent, and the handlers stay: a second signal while stopping (Ctrl-C twice, or the
    // parent watch after a Ctrl-C) must not kill this process by default and orphan the fleet.
    const stop = (why: string, code: number) => {
      if (stopping) return;
      stopping = true;
      process.stdout.write(`\ndevstack demo: ${why}; stopping...\n`);
      void fleet.stop({ keepLogs: code !== 0 }).then(() => {
        process.stdout.write(code === 0 ? 'devstack demo: stopped; nothing left running.\n' : `devstack demo: stopped; logs kept in ${fleet.dir}\n`);
        resolve(code);
      });
    };
    process.on('SIGINT', () => stop('SIGINT', 0));
    process.on('SIGTERM', () => stop('SIGTERM', 0));
    if (signalled !== undefined) return stop(signalled, 0);
    void fleet.failure.then((message) => stop(message, 1));
  });
  if (signalled === undefined) process.stdout.write(`${banner(fleet)}(started in ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  return stopped;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    const code = error instanceof FleetError ? error.code : 'unexpected';
    process.stderr.write(`devstack demo: ${error instanceof FleetError ? error.message : (error.stack ?? error.message)} (${code})\n`);
    process.exitCode = error instanceof FleetError && error.code === 'DEVSTACK_DEMO_BAD_OPTION' ? 2 : 1;
  },
);
