/**
 * pg-boss as a peer (PostgreSQL only): a job's life there is send → fetch → complete with
 * output. Its background supervisor and scheduler are off, which only helps it: the loop
 * measures the three calls and nothing else.
 */
import PgBoss from 'pg-boss';

import type { Variant } from '../lib/harness.js';
import { APP_NAME, backendCpu, benchSchema, dropSchema, PG_URL } from '../lib/postgres.js';
import { nextLifecycle, outputOf, paramsOf, subjectOf } from './workload.js';

const QUEUE = 'bench';

function boss(schema: string, max: number): PgBoss {
  const b = new PgBoss({ connectionString: PG_URL, schema, max, supervise: false, schedule: false, application_name: APP_NAME });
  b.on('error', (err) => console.error('pg-boss:', err));
  return b;
}

/** A fresh pg-boss schema per measurement (pg-boss installs it on start), dropped after. */
export function pgBossLifecycle(label: string): Variant {
  return {
    name: 'pg-boss',
    label,
    async open(concurrency) {
      const schema = benchSchema('boss');
      const b = boss(schema, concurrency);
      await b.start();
      await b.createQueue(QUEUE);
      return {
        serverCpu: backendCpu,
        async op() {
          const n = nextLifecycle();
          await b.send(QUEUE, { subject: subjectOf(n), params: paramsOf(n) });
          // Another worker may have taken "our" job: any job will do, as with real workers.
          let jobs = await b.fetch(QUEUE);
          while (!jobs.length) jobs = await b.fetch(QUEUE);
          await b.complete(QUEUE, jobs[0].id, outputOf(n));
        },
        async close() {
          await b.stop({ graceful: false, close: true });
          await dropSchema(schema);
        },
      };
    },
  };
}
