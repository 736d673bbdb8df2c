/**
 * One unkeyed event in ONE statement (one round trip, one commit), the way
 * sql/transition.ts appends a status event: the UPDATE takes the run row lock, so
 * concurrent appenders queue on it and each re-reads the head that the previous one
 * committed — seq stays gapless and in commit order, and the hash is chained in SQL
 * from the locked head. A terminal or missing run updates nothing and returns no row;
 * the caller then takes the transactional path, which explains why.
 *
 * $1 namespace, $2 run id, $3 canonical head of the event (up to seq), $4 its tail,
 * $5 recorded_at, $6 type, $7 level, $8 at, $9 body.
 */
import { sqlChainHash } from '../../core/hash.js';
import { prepared } from '../../store/database.js';
import { LIVE_SQL, RENEWABLE_SQL } from './fragments.js';

export const appendOneEventSql = prepared(`
with upd as (
  update runs r set last_seq = r.last_seq + 1,
         last_hash = ${sqlChainHash('r.last_hash', '$3::text', 'r.last_seq + 1', '$4::text')},
         heartbeat_at = case when r.status in ${RENEWABLE_SQL} then $5::timestamptz else r.heartbeat_at end,
         suspect = false
   where r.namespace = $1 and r.id = $2 and r.status in ${LIVE_SQL}
  returning r.namespace, r.id, r.last_seq, r.last_hash
), ins as (
  insert into events (namespace, run_id, seq, key, type, level, at, recorded_at, body, hash)
  select namespace, id, last_seq, null, $6::text, $7::text, $8::timestamptz, $5::timestamptz, $9::json, last_hash from upd
)
select last_seq from upd`);
