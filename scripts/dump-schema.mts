// Writes test/schema.sql: the schema a fresh migration produces (embedded PGlite, in memory),
// as test/schema/dump.ts prints it. Run by `npm run generate` after changing migrations/.
import { writeFileSync } from 'node:fs';

import { openLedger } from '../src/index.js';
import { dumpSchema } from '../test/schema/dump.js';

const ledger = await openLedger({ dataDir: 'memory://' });
try {
  writeFileSync(new URL('../test/schema.sql', import.meta.url), await dumpSchema(ledger.database));
} finally {
  await ledger.close();
}
