#!/usr/bin/env node
'use strict';
// Thin launcher so `npx fleetmq` and the package `bin` work without ts-node: the broker is
// compiled to dist/ by `npm install` (prepare script).
require('../dist/src/cli.js').main(process.argv.slice(2));
