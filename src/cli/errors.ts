/**
 * The CLI's one error handler and its exit codes: 0 ok, 1 a failure or a problem found
 * (a run not found, a verify problem, an invalid transition), 2 a usage or configuration
 * error (bad flags, bad input, unreachable database or server, a locked data directory).
 */
import { CommanderError } from 'commander';

import { ERRORS, EXIT_FAILURE, EXIT_USAGE, LedgerError } from '../core/errors.js';

export { EXIT_FAILURE, EXIT_USAGE };
export const EXIT_OK = 0;

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {
  readonly code = 'usage';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure the command has already explained, or one with a chosen exit code. */
export class CliExit extends Error {
  constructor(
    readonly exitCode: number,
    message = '',
  ) {
    super(message);
    this.name = 'CliExit';
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The HTTP client's "never got an answer" (its message names the server already). */
export function isServerUnreachable(err: unknown): err is { message: string } {
  const http = err as { code?: unknown; status?: unknown; message?: unknown } | undefined;
  return http?.code === 'unavailable' && http.status === 0 && typeof http.message === 'string';
}

/** The network error code (ECONNREFUSED…) somewhere in `err`'s cause chain, if any. */
export function networkCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
  }
  return undefined;
}

export interface Reported {
  exitCode: number;
  code: string;
  message: string;
  details?: unknown[];
}

/** Classifies any thrown value into an exit code, a stable code and a message. */
export function classify(err: unknown): Reported {
  if (err instanceof CliExit) return { exitCode: err.exitCode, code: 'exit', message: err.message };
  if (err instanceof UsageError) return { exitCode: EXIT_USAGE, code: 'usage', message: err.message };
  if (err instanceof CommanderError) return { exitCode: EXIT_USAGE, code: 'usage', message: err.message.replace(/^error: /, '') };
  if (err instanceof LedgerError) {
    return {
      exitCode: ERRORS[err.code].exit,
      code: err.code,
      message: err.message,
      ...(err.details.length ? { details: err.details } : {}),
    };
  }
  // The HTTP client's "never got an answer": the server URL is wrong or the server is down.
  if (isServerUnreachable(err)) return { exitCode: EXIT_USAGE, code: 'configuration', message: err.message };
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'error';
  const message = typeof e?.message === 'string' && e.message ? e.message : String(err);
  return { exitCode: EXIT_FAILURE, code, message };
}

/** Prints `error: <message>` (or `{"error":{code,message}}` with --json) on stderr; returns the exit code. */
export function reportError(err: unknown, json: boolean): number {
  const r = classify(err);
  if (!r.message) return r.exitCode;
  if (json) {
    process.stderr.write(
      JSON.stringify({ error: { code: r.code, message: r.message, ...(r.details ? { details: r.details } : {}) } }) + '\n',
    );
  } else {
    process.stderr.write(`error: ${r.message}\n`);
  }
  return r.exitCode;
}
