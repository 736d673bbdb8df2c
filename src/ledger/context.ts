import { EventEmitter } from 'node:events';

import type { ChangeNotice } from '../core/changes.js';
import { LedgerError, ValidationError } from '../core/errors.js';
import type { Database } from '../store/database.js';
import type { WriteCoalescer } from './coalesce.js';

export type { ChangeNotice } from '../core/changes.js';

/** What every ledger operation needs: the database, the namespace, a clock, a change feed. */
export interface LedgerContext {
  db: Database;
  namespace: string;
  now(): Date;
  changes: EventEmitter<{ change: [ChangeNotice] }>;
  /** How far ahead of now() a caller's time may be (openLedger's `maxFutureSkewS`, in ms). */
  maxFutureMs?: number;
  /** Group commit of hot writes (coalesce.ts); absent when `db` is bound to a caller's transaction. */
  writes?: WriteCoalescer;
}

/** The default bound on callers' times ahead of the ledger's clock (openLedger's `maxFutureSkewS`). */
export const DEFAULT_MAX_FUTURE_SKEW_S = 300;

/**
 * Refuses a caller's time too far ahead of the ledger's clock: an imported run finished in
 * 9999 would stay its subject's verdict forever, since no live run could be fresher.
 */
export function checkNotFuture(ctx: LedgerContext, field: string, iso: string): void {
  const limitMs = ctx.maxFutureMs ?? DEFAULT_MAX_FUTURE_SKEW_S * 1000;
  const latest = ctx.now().getTime() + limitMs;
  if (Date.parse(iso) > latest)
    throw new ValidationError(
      `${field} ${iso} is more than ${limitMs / 1000} s ahead of the ledger's clock (latest allowed: ${new Date(latest).toISOString()}); check the caller's clock, or raise maxFutureSkewS`,
      [{ field, message: 'in the future', latest: new Date(latest).toISOString() }],
    );
}

// SQLSTATEs that mean "the input cannot be stored", never a server fault.
const INPUT_SQLSTATES: Record<string, string> = {
  '22P05': 'text contains a character PostgreSQL cannot store (such as \\u0000)',
  '22021': 'text is not valid UTF-8',
  '22P02': 'a value has an invalid format',
  '22007': 'a time has an invalid format',
  '22008': 'a time is out of range',
  '22003': 'a number is out of range',
  '54000': 'a value is too large to index or store',
  '2200E': 'a value is too large',
};

/** Turns database errors caused by input into ValidationErrors; everything else passes through. */
export async function mapDbErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof LedgerError) throw err;
    const code = (err as { code?: string }).code;
    if (code && INPUT_SQLSTATES[code]) {
      throw new ValidationError(`${INPUT_SQLSTATES[code]}: ${(err as Error).message}`, [], err);
    }
    throw err;
  }
}
