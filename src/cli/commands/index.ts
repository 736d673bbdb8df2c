/** Every command's register function; program.ts registers them all (one line per command). */
export { register as cancel } from './cancel.js';
export { register as complete } from './complete.js';
export { register as demo } from './demo.js';
export { register as event } from './event.js';
export { register as exec } from './exec.js';
export { register as expect } from './expect.js';
export { register as fail } from './fail.js';
export { register as heartbeat } from './heartbeat.js';
export { register as import } from './import.js';
export { register as migrate } from './migrate.js';
export { register as reap } from './reap.js';
export { register as runs } from './runs.js';
export { register as serve } from './serve.js';
export { register as start } from './start.js';
export { register as tokens } from './tokens.js';
export { register as verify } from './verify.js';
export { register as watch } from './watch.js';
