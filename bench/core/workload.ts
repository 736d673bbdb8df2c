/**
 * The work every variant does, so that the comparison is like for like: a run of job
 * `bench` about one of 500 subjects, started, three progress events, completed with a
 * small output; and batches of log events appended to one run per worker.
 */
import type { Json } from '../../src/core/types.js';

export const NAMESPACE = 'default';
export const JOB = 'bench';
export const TRIGGER = 'bench';
export const EVENTS_PER_LIFECYCLE = 3;

let counter = 0;
/** A new lifecycle number; subjects repeat, so subject-status updates happen (not only inserts). */
export const nextLifecycle = () => counter++;
export const subjectOf = (n: number) => `acme/repo-${n % 500}`;
export const paramsOf = (n: number): Record<string, Json> => ({ n, source: 'bench' });
export const progressBody = (step: number): Record<string, Json> => ({ step, of: EVENTS_PER_LIFECYCLE, message: `step ${step} done` });
export const outputOf = (n: number): Record<string, Json> => ({ ok: true, rows: n % 1000, digest: 'sha256:4f2a9c' });

/** One batch of `size` log events, lines numbered from `first`. */
export function logBatch(size: number, first: number): { type: string; body: Record<string, Json> }[] {
  return Array.from({ length: size }, (_, i) => ({ type: 'log', body: { line: first + i, text: `processed item ${first + i}` } }));
}
