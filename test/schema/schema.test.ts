/**
 * What ships is what the schema files say: the generated migrations module matches
 * migrations/*.sql, and a fresh migration on this backend produces exactly the committed
 * test/schema.sql (both backends produce the same dump). On a failure, run `npm run generate`
 * and review the diff of test/schema.sql.
 */
import { readdirSync, readFileSync } from 'node:fs';

import { afterAll, describe, expect, it } from 'vitest';

import { MIGRATIONS } from '../../src/store/migrate.js';
import { dropSchemas, freshStore } from '../helpers.js';
import { dumpSchema } from './dump.js';

const MIGRATIONS_DIR = new URL('../../migrations/', import.meta.url);

afterAll(() => dropSchemas());

describe('schema', () => {
  it('src/generated/migrations.ts holds exactly migrations/*.sql, in order', () => {
    const files = readdirSync(MIGRATIONS_DIR)
      .filter((f) => /^\d{4}_.+\.sql$/.test(f))
      .sort();
    expect(
      MIGRATIONS.map((m) => m.name),
      'stale: run `npm run generate`',
    ).toEqual(files);
    for (const m of MIGRATIONS) {
      expect(m.sql, `${m.name} differs from the generated module: run \`npm run generate\``).toBe(
        readFileSync(new URL(m.name, MIGRATIONS_DIR), 'utf8'),
      );
      expect(m.id).toBe(Number(m.name.slice(0, 4)));
    }
  });

  it('a fresh migration produces the committed test/schema.sql', async () => {
    const store = await freshStore();
    try {
      const committed = readFileSync(new URL('../schema.sql', import.meta.url), 'utf8');
      expect(await dumpSchema(store.database), 'schema changed: run `npm run generate` and commit test/schema.sql').toBe(committed);
    } finally {
      await store.close();
    }
  });
});
