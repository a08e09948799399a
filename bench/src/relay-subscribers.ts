/*
 * A child of bench/src/relay.ts: COUNT relay streams in one process, read as a lean client would
 * (every change parsed; a full snapshot's head read for its epoch and version), reconnecting with
 * jittered backoff and resuming. Reports arrival times to the parent over IPC.
 *
 *   node relay-subscribers.ts PORT NAMESPACE COUNT
 */
import { request } from 'node:http';

const [port, namespace, count] = [Number(process.argv[2]), process.argv[3]!, Number(process.argv[4])];
const now = () => performance.timeOrigin + performance.now();

/** Change number -> wall-clock arrival of it at each stream. */
const arrivals = new Map<number, number[]>();
/** Arrival of a snapshot after the parent said the relay was killed. */
let resyncs: number[] | undefined;
let synced = 0;
const MARK = /10\.200\.(\d+)\.(\d+)/g;

function open(state: { epoch?: string; version?: number; first: boolean; attempt?: number }): void {
  let retried = false;
  const again = () => {
    if (retried) return;
    retried = true;
    retry(state);
  };
  const query = state.epoch !== undefined ? `?epoch=${state.epoch}&since=${state.version}` : '';
  const req = request({ host: '127.0.0.1', port, path: `/v1/namespaces/${namespace}/stream${query}`, agent: false }, (res) => {
    let buffered = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const at = now();
        state.attempt = 0;
        if (line.startsWith('{"type":"snapshot"')) {
          const head = /"epoch":"([^"]+)","version":(\d+)/.exec(line.slice(0, 200))!;
          state.epoch = head[1];
          state.version = Number(head[2]);
          if (state.first) {
            state.first = false;
            if (++synced === count) process.send!({ type: 'ready' });
          } else if (resyncs !== undefined) {
            resyncs.push(at);
            if (resyncs.length === count) process.send!({ type: 'resynced', times: resyncs });
          }
          continue;
        }
        const message = JSON.parse(line) as { type: string; epoch: string; version: number; services?: Record<string, unknown> };
        state.version = message.version;
        if (message.type !== 'delta') continue;
        // Changes close together may come as one delta: every change it carries arrived now.
        for (const mark of JSON.stringify(message.services).matchAll(MARK)) {
          const seq = Number(mark[1]) * 256 + Number(mark[2]);
          let list = arrivals.get(seq);
          if (list === undefined) arrivals.set(seq, (list = []));
          list.push(at);
        }
      }
    });
    res.on('error', () => undefined);
    res.on('close', again);
  });
  req.on('error', again);
  req.end();
}

function retry(state: { epoch?: string; version?: number; first: boolean; attempt?: number }): void {
  // The relay source's backoff: 500 ms doubling to 30 s, over the upper half of each step.
  const step = Math.min(30_000, 500 * 2 ** Math.min(state.attempt ?? 0, 30));
  state.attempt = (state.attempt ?? 0) + 1;
  setTimeout(() => open(state), step / 2 + (step / 2) * Math.random());
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'killed') resyncs = [];
  if (m.type === 'report') process.send!({ type: 'report', arrivals: [...arrivals] });
  if (m.type === 'exit') process.exit(0);
});

for (let i = 0; i < count; i++) open({ first: true });
