import { openLedger, buildServer } from './dist/index.js';
import { mkdtempSync } from 'node:fs';
const ledger = await openLedger({ dataDir: mkdtempSync('/tmp/x-') + '/l' });
const app = await buildServer({ ledger, auth: 'off' });
const t = setTimeout(() => { console.log('HUNG'); process.exit(3); }, 8000);
for (const headers of [{ 'content-type': 'application/json' }, {}, { 'if-match': 'W/"2"' }]) {
  const res = await app.inject({ method: 'POST', url: '/v1/runs', headers, payload: '{"id":"fz-1","job":"fuzz","subject":"s1","jobExtra":1}' });
  console.log(JSON.stringify(headers), res.statusCode, res.body.slice(0, 200));
}
clearTimeout(t); await app.close(); await ledger.close();
