/** verify: recompute every hash chain and checkpoint hash; report gaps and mismatches (invariant 8). */
import { chainHash, checkpointHash } from '../core/hash.js';
import type { VerifyProblem, VerifyResult } from '../core/types.js';
import type { LedgerContext } from './context.js';
import { getRunRow } from './queries.js';
import { type CheckpointRow, type EventRow, iso } from './rows.js';

const RUN_PAGE = 200;

async function verifyRuns(
  ctx: LedgerContext,
  heads: { id: string; last_seq: number; last_hash: string }[],
  problems: VerifyProblem[],
): Promise<number> {
  const ids = heads.map((h) => h.id);
  const { rows: events } = await ctx.db.query<EventRow>(
    `select run_id, seq, key, type, level, at, body, hash from events where namespace = $1 and run_id = any($2::text[]) order by run_id, seq`,
    [ctx.namespace, ids],
  );
  const { rows: checkpoints } = await ctx.db.query<CheckpointRow>(
    `select run_id, name, kind, ref, metadata, data, content_hash, seq from checkpoints where namespace = $1 and run_id = any($2::text[])`,
    [ctx.namespace, ids],
  );
  const byRun = new Map<string, EventRow[]>();
  for (const e of events) (byRun.get(e.run_id) ?? byRun.set(e.run_id, []).get(e.run_id)!).push(e);

  for (const head of heads) {
    let prev = '';
    let expected = 1;
    for (const e of byRun.get(head.id) ?? []) {
      if (e.seq !== expected) {
        problems.push({ runId: head.id, seq: e.seq, problem: 'seq_gap', message: `expected seq ${expected}, found ${e.seq}` });
        expected = e.seq;
      }
      const hash = chainHash(prev, { at: iso(e.at)!, body: e.body, key: e.key, level: e.level, seq: e.seq, type: e.type });
      if (hash !== e.hash)
        problems.push({
          runId: head.id,
          seq: e.seq,
          problem: 'hash_mismatch',
          message: `event ${e.seq} hash does not match its content and chain`,
        });
      prev = e.hash;
      expected++;
    }
    if (expected - 1 !== head.last_seq || prev !== head.last_hash) {
      problems.push({
        runId: head.id,
        problem: 'last_seq_mismatch',
        message: `run head says seq ${head.last_seq}, log ends at ${expected - 1}`,
      });
    }
  }
  for (const c of checkpoints) {
    const hash = checkpointHash({ name: c.name, kind: c.kind, ref: c.ref, metadata: c.metadata, data: c.data ?? null });
    if (hash !== c.content_hash)
      problems.push({
        runId: c.run_id,
        checkpoint: c.name,
        problem: 'checkpoint_hash_mismatch',
        message: `checkpoint ${c.name} content does not match its hash`,
      });
  }
  return events.length;
}

/** Verifies one run, or every run in the namespace (in pages, never all at once). */
export async function verify(ctx: LedgerContext, runId?: string): Promise<VerifyResult> {
  const problems: VerifyProblem[] = [];
  let runsChecked = 0;
  let eventsChecked = 0;
  if (runId !== undefined) {
    const row = await getRunRow(ctx, runId);
    eventsChecked = await verifyRuns(ctx, [row], problems);
    runsChecked = 1;
  } else {
    let after = '';
    for (;;) {
      const { rows } = await ctx.db.query<{ id: string; last_seq: number; last_hash: string }>(
        `select id, last_seq, last_hash from runs where namespace = $1 and id > $2 order by id limit $3`,
        [ctx.namespace, after, RUN_PAGE],
      );
      if (!rows.length) break;
      eventsChecked += await verifyRuns(ctx, rows, problems);
      runsChecked += rows.length;
      after = rows[rows.length - 1].id;
    }
  }
  return { ok: problems.length === 0, runsChecked, eventsChecked, problems };
}
