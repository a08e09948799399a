#!/usr/bin/env node
/*
 * The `devstack-relay` command. It exists before anything is built, so npm links it at install
 * time, and it is plain ES5 CommonJS so that an old Node reads it and says which Node is needed
 * (this package's `engines.node`) instead of failing inside a dependency. Then it runs dist/cli.js.
 */
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS on purpose, see above */

var fs = require('fs');
var path = require('path');

function parts(version) {
  var p = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(version);
  return p === null ? null : [Number(p[1]), Number(p[2] || 0), Number(p[3] || 0)];
}

function atLeast(have, need) {
  for (var i = 0; i < 3; i++) if (have[i] !== need[i]) return have[i] > need[i];
  return true;
}

var root = path.join(__dirname, '..');
var range = String((require(path.join(root, 'package.json')).engines || {}).node || '');
var need = /^>=\s*\d/.test(range) ? parts(range.replace(/^>=\s*/, '')) : null;
if (need !== null && !atLeast(parts(process.versions.node), need)) {
  process.stderr.write(
    'devstack-relay: needs Node.js ' + need.join('.') + ' or newer; this is Node.js ' + process.versions.node + ' (' + process.execPath + ')\n'
  );
  process.exit(1);
}

var cli = path.join(root, 'dist', 'cli.js');
if (!fs.existsSync(cli)) {
  process.stderr.write('devstack-relay: ' + cli + ' is not built yet; run npm run build (from the repository root)\n');
  process.exit(1);
}
// Run by npm (npx, npm exec, a package script), this process sits below a shell that npm signals:
// the shell dies and the relay would run on. No event tells that a parent is gone, so its id is
// watched, and a lost parent is taken as SIGTERM (drain, then exit), as a signal to npm would be.
if (process.env.npm_execpath !== undefined) {
  var parent = process.ppid;
  var watch = setInterval(function () {
    if (process.ppid === parent) return;
    clearInterval(watch);
    process.kill(process.pid, 'SIGTERM');
  }, 250);
  watch.unref();
}

// import() hidden in a string: a Node too old to parse it must still reach the version check above.
var load = new Function('url', 'return import(url)');
load(require('url').pathToFileURL(cli).href).catch(function (error) {
  process.stderr.write('devstack-relay: cannot load ' + cli + ': ' + (error && error.stack ? error.stack : error) + '\n');
  process.exitCode = 1;
});
