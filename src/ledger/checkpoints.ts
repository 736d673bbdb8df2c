/** Immutable checkpoints: written once, whole, with an RFC 8785 content hash (metadata mutated by the caller after the write cannot change what was stored). */
import { KeyConflictError, NotFoundError, RunFinishedError } from '../core/errors.js';
import { checkpointHash } from '../core/hash.js';
import { isTerminal } from '../core/status.js';
import type { Checkpoint, CheckpointInput, CheckpointResult, Json, RunStatus } from '../core/types.js';
import { checkpointInputSchema, parseInput } from '../core/validation.js';
import { type ChainHead, insertChained, lockRun } from './chain.js';
import { type LedgerContext, mapDbErrors } from './context.js';
import { getRunRow } from './queries.js';
import { missingRun } from './retention.js';
import { type CheckpointRow, toCheckpoint } from './rows.js';
import { RENEWABLE_SQL } from './sql/fragments.js';

const COLUMNS = 'run_id, name, kind, ref, metadata, data, content_hash, seq, created_at';

export async function writeCheckpoint(ctx: LedgerContext, id: string, raw: CheckpointInput): Promise<CheckpointResult> {
  const input = parseInput(checkpointInputSchema, raw);
  const content = {
    name: input.name,
    kind: input.kind ?? null,
    ref: input.ref ?? null,
    metadata: input.metadata as Json,
    data: (input.data ?? null) as Json,
  };
  const contentHash = checkpointHash(content);
  const now = ctx.now().toISOString();

  const result = await mapDbErrors(() =>
    ctx.db.withTransaction(async (tx) => {
      const head = await lockRun<ChainHead & { status: RunStatus }>(tx, ctx.namespace, id);
      if (!head) throw await missingRun(ctx, id, tx);
      const { rows } = await tx.query<CheckpointRow>(
        `select ${COLUMNS} from checkpoints where namespace = $1 and run_id = $2 and name = $3`,
        [ctx.namespace, id, input.name],
      );
      if (rows[0]) {
        if (rows[0].content_hash === contentHash) return { checkpoint: toCheckpoint(rows[0]), created: false, lastSeq: 0 };
        throw new KeyConflictError(
          `checkpoint ${JSON.stringify(input.name)} of run ${id} already exists with other content; checkpoints are immutable`,
          [{ field: 'name', message: `stored content hash ${rows[0].content_hash}, this one ${contentHash}` }],
        );
      }
      if (isTerminal(head.status)) throw new RunFinishedError(id, head.status, 'no checkpoints can be written');
      const [seq] = await insertChained(
        tx,
        head,
        [{ key: null, type: 'run.checkpoint', level: null, at: now, body: { name: input.name, kind: content.kind, contentHash } }],
        now,
      );
      const inserted = await tx.query<CheckpointRow>(
        `insert into checkpoints (namespace, run_id, name, kind, ref, metadata, data, content_hash, seq, created_at)
         values ($1, $2, $3, $4, $5, $6::json, $7::json, $8, $9, $10) returning ${COLUMNS}`,
        [
          ctx.namespace,
          id,
          input.name,
          content.kind,
          content.ref,
          JSON.stringify(content.metadata),
          input.data === undefined ? null : JSON.stringify(input.data),
          contentHash,
          seq,
          now,
        ],
      );
      await tx.query(
        `update runs set last_seq = $3, last_hash = $4,
                heartbeat_at = case when status in ${RENEWABLE_SQL} then $5::timestamptz else heartbeat_at end, suspect = false
          where namespace = $1 and id = $2`,
        [ctx.namespace, id, head.last_seq, head.last_hash, now],
      );
      return { checkpoint: toCheckpoint(inserted.rows[0]), created: true, lastSeq: head.last_seq };
    }),
  );
  if (result.created) ctx.changes.emit('change', { namespace: ctx.namespace, runId: id, lastSeq: result.lastSeq });
  return { checkpoint: result.checkpoint, created: result.created };
}

export async function getCheckpoint(ctx: LedgerContext, id: string, name: string): Promise<Checkpoint> {
  const { rows } = await ctx.db.query<CheckpointRow>(
    `select ${COLUMNS} from checkpoints where namespace = $1 and run_id = $2 and name = $3`,
    [ctx.namespace, id, name],
  );
  if (!rows[0]) {
    await getRunRow(ctx, id);
    throw new NotFoundError(`checkpoint ${JSON.stringify(name)} not found on run ${id}`);
  }
  return toCheckpoint(rows[0]);
}

export async function listCheckpoints(ctx: LedgerContext, id: string): Promise<Checkpoint[]> {
  await getRunRow(ctx, id);
  const { rows } = await ctx.db.query<CheckpointRow>(
    `select run_id, name, kind, ref, metadata, content_hash, seq, created_at from checkpoints where namespace = $1 and run_id = $2 order by seq`,
    [ctx.namespace, id],
  );
  return rows.map(toCheckpoint);
}
