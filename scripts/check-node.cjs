/*
 * Runs first in every npm script that starts this repository's code, on whatever Node is installed,
 * so an old Node gets one clear line instead of a syntax error deep in a dependency. Plain ES5 and
 * CommonJS on purpose: it must parse on the Nodes it rejects. The minimum is the root package.json
 * `engines.node`, the one place it is written down.
 */
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS on purpose, see above */

var path = require('path');

function parts(version) {
  var p = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(version);
  if (p === null) return null;
  return [Number(p[1]), Number(p[2] || 0), Number(p[3] || 0)];
}

function atLeast(have, need) {
  for (var i = 0; i < 3; i++) if (have[i] !== need[i]) return have[i] > need[i];
  return true;
}

var engines = require(path.join(__dirname, '..', 'package.json')).engines;
var range = engines && engines.node;
var need = typeof range === 'string' && /^>=\s*\d/.test(range) ? parts(range.replace(/^>=\s*/, '')) : null;
if (need === null) {
  process.stderr.write('devstack: package.json engines.node must be ">=X.Y.Z", got ' + JSON.stringify(range) + '\n');
  process.exit(1);
}
var have = parts(process.versions.node);
if (!atLeast(have, need)) {
  process.stderr.write(
    'devstack needs Node.js ' + need.join('.') + ' or newer; this is Node.js ' + process.versions.node +
      ' (' + process.execPath + '). Install a newer Node (see "Set-up" in README.md).\n'
  );
  process.exit(1);
}
