#!/usr/bin/env node
'use strict';
// The main thread only accepts sockets and hands them over: a small young generation keeps the
// garbage of a connection burst from staying resident (see --young-generation-mb for the others).
require('v8').setFlagsFromString('--max-semi-space-size=1');
// Thin launcher so `npx fleetmq` and the package `bin` work without ts-node: the broker is
// compiled to dist/ by `npm install` (prepare script).
require('../dist/src/cli.js').main(process.argv.slice(2));
