/** Lease renewal: clears `suspect` and records progress. Does not bump `version`. */
import { InvalidTransitionError, RunFinishedError } from '../core/errors.js';
import { isTerminal } from '../core/status.js';
import type { Json } from '../core/types.js';
import { json as jsonSchema, parseInput } from '../core/validation.js';
import { prepared } from '../store/database.js';
import { type LedgerContext, mapDbErrors } from './context.js';
import { getRunRow } from './queries.js';
import { RUN_COLUMNS, type RunRow } from './rows.js';
import { RENEWABLE_SQL } from './sql/fragments.js';

const heartbeatSql = prepared(`
update runs set heartbeat_at = $3, suspect = false, progress = coalesce($4::json, progress)
 where namespace = $1 and id = $2 and status in ${RENEWABLE_SQL}
returning ${RUN_COLUMNS}`);

export async function heartbeat(ctx: LedgerContext, id: string, progress?: Json): Promise<RunRow> {
  if (progress !== undefined) parseInput(jsonSchema, progress, 'progress');
  return mapDbErrors(async () => {
    const { rows } = await ctx.db.query<RunRow>(heartbeatSql, [
      ctx.namespace,
      id,
      ctx.now().toISOString(),
      progress === undefined ? null : JSON.stringify(progress),
    ]);
    if (rows[0]) return rows[0];
    const current = await getRunRow(ctx, id);
    if (isTerminal(current.status)) throw new RunFinishedError(id, current.status, 'heartbeats are refused (stop working on it)');
    throw new InvalidTransitionError(id, current.status, 'heartbeat', ['start it first']);
  });
}
