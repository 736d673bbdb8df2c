/** Metadata updates: tags (merge), notes, write-once external ids, optional compare-and-set. */
import { KeyConflictError, VersionMismatchError } from '../core/errors.js';
import type { UpdateRunInput } from '../core/types.js';
import { parseInput, updateRunSchema } from '../core/validation.js';
import { insertChained, lockRun, type NewEvent } from './chain.js';
import { type LedgerContext, mapDbErrors } from './context.js';
import { missingRun } from './retention.js';
import { RUN_COLUMNS, type RunRow } from './rows.js';

export async function updateRun(ctx: LedgerContext, id: string, raw: UpdateRunInput): Promise<RunRow> {
  const input = parseInput(updateRunSchema, raw);
  const now = ctx.now().toISOString();
  const result = await mapDbErrors(() =>
    ctx.db.withTransaction(async (tx) => {
      const row = await lockRun<RunRow>(tx, ctx.namespace, id, RUN_COLUMNS);
      if (!row) throw await missingRun(ctx, id, tx);
      if (input.ifVersion !== undefined && input.ifVersion !== row.version)
        throw new VersionMismatchError(id, input.ifVersion, row.version);

      // External ids are write-once per key: same value is a no-op, another is a conflict.
      const newIds: Record<string, string> = {};
      for (const [key, value] of Object.entries(input.externalIds ?? {})) {
        const stored = row.external_ids[key];
        if (stored === undefined) newIds[key] = value;
        else if (stored !== value) {
          throw new KeyConflictError(
            `external id ${key} of run ${id} is already ${JSON.stringify(stored)}; it cannot become ${JSON.stringify(value)}`,
            [{ field: `externalIds.${key}`, message: `already ${stored}` }],
          );
        }
      }
      const tagsChange = Object.entries(input.tags ?? {}).some(([k, v]) => row.tags[k] !== v);
      const notesChange = input.notes !== undefined && input.notes !== row.notes;
      if (!tagsChange && !notesChange && Object.keys(newIds).length === 0) return { row, changed: false };

      const events: NewEvent[] = Object.entries(newIds).map(([key, value]) => ({
        key: null,
        type: 'run.external_id',
        level: null,
        at: now,
        body: { key, value },
      }));
      await insertChained(tx, row, events, now);
      // Merged here, under the row lock, not with jsonb's ||, which would sort the keys: a tag
      // keeps its place when its value changes, new tags and ids follow in the order sent.
      const tags = { ...row.tags, ...input.tags };
      const externalIds = { ...row.external_ids, ...newIds };
      const { rows } = await tx.query<RunRow>(
        `update runs set tags = $3::json, notes = coalesce($4, notes), external_ids = $5::json,
                version = version + 1, last_seq = $6, last_hash = $7
          where namespace = $1 and id = $2 returning ${RUN_COLUMNS}`,
        [ctx.namespace, id, JSON.stringify(tags), input.notes ?? null, JSON.stringify(externalIds), row.last_seq, row.last_hash],
      );
      return { row: rows[0], changed: true };
    }),
  );
  if (result.changed) ctx.changes.emit('change', { namespace: ctx.namespace, runId: id, lastSeq: result.row.last_seq });
  return result.row;
}
