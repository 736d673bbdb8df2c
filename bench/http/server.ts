/**
 * The server side of the `http` benchmark, as its own process (as it is deployed): opens the
 * library on a PostgreSQL schema, serves it with auth off on a loopback port and prints the
 * URL on stdout. Stops when its stdin closes (the benchmark ended or died).
 *
 *   tsx bench/http/server.ts <database-url> <schema> <pool size>
 */
import { openLedger } from '../../src/index.js';
import { startServer } from '../../src/server/serve.js';

const [url, schema, poolSize] = process.argv.slice(2);
const ledger = await openLedger({ url, schema, poolSize: Number(poolSize), migrate: false });
const server = await startServer({ ledger, host: '127.0.0.1', port: 0, auth: 'off', logger: false });
process.stdout.write(`${server.url}\n`);
process.stdin.resume();
process.stdin.once('end', () => {
  void server
    .close()
    .then(() => ledger.close())
    .finally(() => process.exit(0));
});
