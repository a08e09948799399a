// Loaded into every test process (package.json "tap" "node-arg"). Tests talk to servers on
// loopback that they start themselves; a proxy in the developer's or CI's environment must not
// come between. grpc-js tunnels every call through a lower-case grpc_proxy, https_proxy or
// http_proxy (it reads no other spelling), so those move to their upper-case names, which npm
// (run by some tests) still reads and grpc-js ignores. A test that wants a proxy sets its own.
for (const name of ['https_proxy', 'http_proxy', 'no_proxy']) {
  const value = process.env[name];
  if (value === undefined) continue;
  const upper = name.toUpperCase();
  if (process.env[upper] === undefined) process.env[upper] = value;
  delete process.env[name];
}
delete process.env['grpc_proxy'];
delete process.env['no_grpc_proxy'];
