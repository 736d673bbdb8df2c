/**
 * Expectation schedules as pure rules: durations (`90s`, `30m`, `12h`, `7d`), cron
 * expressions in an IANA time zone (parsed by croner), and the next slot after a time.
 * Shared by the ledger (which stores and monitors them) and the CLI (which checks flags).
 */
import { Cron } from 'croner';

import { ValidationError } from './errors.js';
import type { ExpectationInput } from './types.js';

const UNITS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
const MAX_S = 366 * 86_400;

/** `12h` → 43200. `min` 1 refuses zero. Throws a ValidationError naming `field`. */
export function parseDuration(field: string, text: unknown, min: 0 | 1): number {
  const m = typeof text === 'string' ? /^(\d{1,9})(s|m|h|d)$/.exec(text) : null;
  const bad = (what: string) =>
    new ValidationError(`${field} ${what}; got ${JSON.stringify(text)}`, [{ field, message: what, value: text as never }]);
  if (!m) throw bad('must be a whole number and a unit (s, m, h or d), such as 90s, 30m, 12h or 7d');
  const seconds = Number(m[1]) * UNITS[m[2] as keyof typeof UNITS];
  if (seconds < min) throw bad('must be more than zero');
  if (seconds > MAX_S) throw bad('must be at most 366d');
  return seconds;
}

export function assertTimeZone(field: string, tz: string): void {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new ValidationError(`${field} must be an IANA time zone such as UTC or Europe/Berlin; got ${JSON.stringify(tz)}`, [
      { field, message: 'unknown time zone', value: tz },
    ]);
  }
}

/** A croner schedule (never started: it only computes). Throws a ValidationError naming `cron`. */
export function cronOf(expr: string, timezone: string): Cron {
  let cron: Cron;
  try {
    cron = new Cron(expr, { timezone, paused: true });
  } catch (err) {
    const reason = (err as Error).message.replace(/^CronPattern: /, '');
    throw new ValidationError(`cron is not a valid cron expression (${reason}); got ${JSON.stringify(expr)}`, [
      { field: 'cron', message: reason, value: expr },
    ]);
  }
  if (cron.nextRun(new Date()) === null)
    throw new ValidationError(`cron never fires; got ${JSON.stringify(expr)}`, [{ field: 'cron', message: 'no future slot', value: expr }]);
  return cron;
}

/** A validated expectation, in the units it is stored in. */
export interface Schedule {
  everyS: number | null;
  cron: string | null;
  timezone: string;
  graceS: number;
  perSubject: boolean;
}

/** Checks an expectation input; every message names the field. */
export function parseSchedule(input: ExpectationInput): Schedule {
  const hasEvery = input.every !== undefined;
  const hasCron = input.cron !== undefined;
  if (hasEvery === hasCron)
    throw new ValidationError(
      `give exactly one of every (an interval such as 12h) or cron (such as "0 */6 * * *"); got ${hasEvery ? 'both' : 'neither'}`,
      [{ field: hasEvery ? 'cron' : 'every', message: hasEvery ? 'not allowed with every' : 'one of every or cron is required' }],
    );
  const timezone = input.timezone ?? 'UTC';
  assertTimeZone('timezone', timezone);
  if (hasEvery && input.timezone !== undefined && input.timezone !== 'UTC')
    throw new ValidationError('timezone applies to cron schedules only; an interval (every) counts from the last start', [
      { field: 'timezone', message: 'only with cron', value: input.timezone },
    ]);
  const everyS = hasEvery ? parseDuration('every', input.every, 1) : null;
  if (hasCron) cronOf(input.cron!, timezone);
  return {
    everyS,
    cron: input.cron ?? null,
    timezone,
    graceS: parseDuration('grace', input.grace, 0),
    perSubject: input.perSubject ?? true,
  };
}

/**
 * The first slot strictly after `after`. An interval counts from `after` itself; a cron
 * schedule is evaluated in its time zone (croner converts to UTC, so a DST change neither
 * skips nor doubles a slot).
 */
export function nextSlot(s: Pick<Schedule, 'everyS' | 'cron' | 'timezone'>, after: Date): Date | null {
  if (s.everyS !== null) return new Date(after.getTime() + s.everyS * 1000);
  return cronOf(s.cron!, s.timezone).nextRun(after);
}

/** Up to `count` consecutive cron slots, the first one after `from`. */
export function cronSlots(cron: string, timezone: string, from: Date, count: number): Date[] {
  return cronOf(cron, timezone).nextRuns(count, from);
}
