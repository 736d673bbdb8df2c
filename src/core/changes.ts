/**
 * The change feed's model, shared by the library, the server, the client and the CLI:
 * change types, the cursor, and the query schema.
 */
import { z } from 'zod';

import { ValidationError } from './errors.js';
import type { Json } from './json.js';

/** Every type the change log may hold (README "Change feed"). */
export const CHANGE_TYPES = ['run.finished', 'run.suspect', 'subject.changed', 'expectation.missed', 'expectation.met'] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

export interface Change {
  /** Unique, increasing in insert order (not commit order); the Standard Webhooks `webhook-id`. */
  id: number;
  /** Position in the feed: pass it as `after` to resume right after this change. */
  cursor: string;
  type: ChangeType;
  at: string;
  namespace: string;
  runId: string | null;
  job: string;
  subject: string | null;
  data: Json;
}

export interface ChangePage {
  changes: Change[];
  /**
   * Resume here. It moves past every change this read could see, including those the
   * filters left out, so a filtered consumer does not re-read them.
   */
  nextAfter: string;
  /**
   * True when changes past `nextAfter` have committed but cannot be served yet: an older
   * transaction is still open, and a change it writes would have to come before them.
   * Read again shortly; they are served, in order, once it ends.
   */
  heldBack: boolean;
}

export interface ChangesQuery {
  /** A cursor (`nextAfter` or a change's `cursor`); omitted or `0`: from the start; `now`: only what comes next. */
  after?: string;
  types?: ChangeType[];
  job?: string;
  /** 1–1000 (default 100). */
  limit?: number;
}

export interface WatchOptions extends Omit<ChangesQuery, 'limit'> {
  /** Called once per change, in feed order; the next is not delivered until it settles. */
  onChange(change: Change): void | Promise<void>;
  /** A failed read; the watch retries it. Default: console.error. (A throwing onChange ends the watch: `done` rejects.) */
  onError?(err: unknown): void;
  signal?: AbortSignal;
}

export interface Watcher {
  /** The cursor after the last change handed to onChange (resume with it). */
  readonly cursor: string | null;
  /** Ends the watch; resolves when no onChange is running any more. */
  stop(): Promise<void>;
  /** Settles when the watch ends (rejects if onChange threw). */
  readonly done: Promise<void>;
}

export const CHANGE_PAGE_MAX = 1000;

/** A position in the feed: the writing transaction's id, then the change id. */
export interface FeedPosition {
  xid: string;
  id: string;
}

const CURSOR = /^(\d{1,20})-(\d{1,19})$/;
export const START: FeedPosition = { xid: '0', id: '0' };

export const formatCursor = (p: FeedPosition): string => `${p.xid}-${p.id}`;

/** `undefined`/`0` → the start, `now` → null (the caller substitutes the current frontier). */
export function parseCursor(text: string | undefined, field = 'after'): FeedPosition | null {
  if (text === undefined || text === '' || text === '0') return START;
  if (text === 'now') return null;
  const m = CURSOR.exec(text);
  if (!m)
    throw new ValidationError(
      `${field} must be a change cursor such as "1234-56" (a change's cursor or a page's nextAfter), 0 or now; got ${JSON.stringify(text)}`,
      [{ field, message: 'not a change cursor' }],
    );
  return { xid: m[1], id: m[2] };
}

export const changeTypeSchema = z.enum(CHANGE_TYPES, { error: `types must be among ${CHANGE_TYPES.join(', ')}` });

export const changesQuerySchema = z.strictObject({
  after: z.string({ error: 'after must be a change cursor' }).max(60, 'after must be a change cursor').optional(),
  types: z
    .array(changeTypeSchema, { error: `types must be a list of ${CHANGE_TYPES.join(', ')}` })
    .min(1, 'types must name at least one type')
    .optional(),
  job: z
    .string({ error: 'job must be a string' })
    .min(1, 'job must be 1–200 characters')
    .max(200, 'job must be 1–200 characters')
    .optional(),
  limit: z
    .number({ error: `limit must be a whole number 1–${CHANGE_PAGE_MAX}` })
    .int(`limit must be a whole number 1–${CHANGE_PAGE_MAX}`)
    .min(1, `limit must be 1–${CHANGE_PAGE_MAX}`)
    .max(CHANGE_PAGE_MAX, `limit must be 1–${CHANGE_PAGE_MAX}`)
    .optional(),
});

/** Emitted in process after a write commits; the server's live tail listens to it. */
export interface ChangeNotice {
  namespace: string;
  runId: string;
  lastSeq: number;
  status?: string;
  /** The write appended to the change log (watchers of the feed wake on it). */
  feed?: boolean;
}

/**
 * How long to wait before reading a held-back feed again (the `n`th time in a row): no write
 * announces that the transaction holding it back has ended, so look again soon, backing off
 * from 25 ms to 1 s.
 */
export const heldBackRetryMs = (n: number) => Math.min(1000, 25 * 2 ** Math.max(0, n - 1));
