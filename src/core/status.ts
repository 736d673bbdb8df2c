import { InvalidTransitionError, RunFinishedError } from './errors.js';
import type { RunStatus, TerminalStatus } from './types.js';

/** The transition table (docs/design.md, promise 2). Terminal statuses have no way out. */
export const TRANSITIONS: Readonly<Record<RunStatus, readonly RunStatus[]>> = {
  submitted: ['running', 'failed', 'cancelled', 'timed_out'],
  running: ['retrying', 'completed', 'failed', 'cancelled', 'timed_out'],
  retrying: ['running', 'failed', 'cancelled', 'timed_out'],
  completed: [],
  failed: [],
  cancelled: [],
  timed_out: [],
};

export const TERMINAL_STATUSES: readonly TerminalStatus[] = ['completed', 'failed', 'cancelled', 'timed_out'];

/** Not finished yet: every status that is not terminal. */
export const LIVE_STATUSES: readonly RunStatus[] = ['submitted', 'running', 'retrying'];

/** Started and not finished: the statuses whose lease heartbeats, events and checkpoints renew. */
export const RENEWABLE_STATUSES: readonly RunStatus[] = ['running', 'retrying'];

export function isTerminal(status: RunStatus | string | undefined): status is TerminalStatus {
  return (TERMINAL_STATUSES as readonly (string | undefined)[]).includes(status);
}

/** The `run.status` event that ends a run's event stream: its status is terminal. */
export function isTerminalEvent(e: { type: string; body: unknown }): boolean {
  return e.type === 'run.status' && isTerminal((e.body as { status?: string } | null)?.status);
}

/** Statuses from which `to` may be reached. */
export function sourcesOf(to: RunStatus): RunStatus[] {
  return (Object.keys(TRANSITIONS) as RunStatus[]).filter((from) => TRANSITIONS[from].includes(to));
}

/** Throws the error a refused transition deserves: `run_finished` from a terminal status, else `invalid_transition`. */
export function assertTransition(runId: string, from: RunStatus, to: RunStatus): void {
  if (TRANSITIONS[from].includes(to)) return;
  if (isTerminal(from)) throw new RunFinishedError(runId, from, `it cannot become ${to}`);
  throw new InvalidTransitionError(runId, from, to, TRANSITIONS[from]);
}
