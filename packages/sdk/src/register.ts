/*
 * `node --import @devstack/sdk/register app.js` (or `--require`, for CommonJS apps): the SDK with no
 * code change, configured from the environment (see env.ts and the README). It never stops the app:
 * a bad variable, or options `init()` refuses, is one line on stderr and the app runs unrouted.
 */
import { startFromEnv } from './autostart.js';

startFromEnv();
