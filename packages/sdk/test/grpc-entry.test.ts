/*
 * @grpc/grpc-js stays an optional peer: the main entry never loads it (nor its types), and the
 * gRPC entry loads it neither, since it works on the module the app passes in. Checked in a child
 * process where resolving @grpc/grpc-js fails as it does in an app that does not install it.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';

const SDK = fileURLToPath(new URL('..', import.meta.url));

const CHILD = `
import { registerHooks } from 'node:module';
const asked = [];
registerHooks({
  resolve(specifier, context, next) {
    if (specifier === '@grpc/grpc-js' || specifier.startsWith('@grpc/grpc-js/')) {
      asked.push(specifier);
      throw Object.assign(new Error('Cannot find package ' + specifier), { code: 'ERR_MODULE_NOT_FOUND' });
    }
    return next(specifier, context);
  },
});
const sdk = await import('@devstack/sdk');
const handle = sdk.init();
const key = await sdk.withRoutingKey('feature1', async () => sdk.getRoutingKey());
await handle.close();
const afterMain = [...asked];
const grpc = await import('@devstack/sdk/grpc');
console.log(JSON.stringify({ key, afterMain, afterGrpc: asked, exports: Object.keys(grpc).sort() }));
`;

t.test('neither entry point loads @grpc/grpc-js', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', CHILD], { cwd: SDK });
  t.same(JSON.parse(stdout), {
    key: 'feature1',
    afterMain: [],
    afterGrpc: [],
    exports: ['grpcClientOptions', 'grpcInterceptor', 'grpcServerInterceptor', 'instrumentGrpc'],
  }, 'the SDK works without grpc-js installed; its gRPC entry asks for none of its own');
});

/** Every declaration file the entry's declarations import, the entry included. */
async function declarations(entry: string): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    const text = await readFile(file, 'utf8');
    seen.set(file, text);
    for (const [, spec] of text.matchAll(/from '(\.[^']+)\.js'/g)) queue.push(join(dirname(file), `${spec}.d.ts`));
  }
  return seen;
}

t.test("the main entry's declarations never mention grpc-js", async (t) => {
  const main = await declarations(join(SDK, 'dist', 'index.d.ts'));
  t.ok(main.size > 5, 'the declarations were followed');
  t.same([...main].filter(([, text]) => text.includes('@grpc/')).map(([file]) => file), [], 'no declaration reachable from index.d.ts names @grpc/grpc-js');
  const grpc = await declarations(join(SDK, 'dist', 'grpc.d.ts'));
  t.ok([...grpc.values()].some((text) => text.includes("from '@grpc/grpc-js'")), 'the gRPC entry does (the check can see it)');
});

t.test('an optional peer dependency, nothing installed for apps without it', async (t) => {
  const manifest = JSON.parse(await readFile(join(SDK, 'package.json'), 'utf8')) as Record<string, Record<string, unknown> | undefined>;
  t.notOk(manifest['dependencies']?.['@grpc/grpc-js'], 'not a dependency');
  t.match(manifest['peerDependencies']?.['@grpc/grpc-js'], /^\^1\.(1\d|[2-9]\d)\./, 'a peer, 1.10 or newer (server interceptors)');
  t.same(manifest['peerDependenciesMeta']?.['@grpc/grpc-js'], { optional: true });
  t.same(manifest['exports']?.['./grpc'], { types: './dist/grpc.d.ts', default: './dist/grpc.js' });
});
