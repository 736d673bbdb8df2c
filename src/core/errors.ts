/**
 * Named errors with stable codes, and the one table that says what each code means on the
 * wire (HTTP status, problem title) and to a shell (CLI exit code). The server answers
 * with the table's status, the client rebuilds the same subclass from the code, and the CLI
 * exits with the table's code, so callers branch on `code` whether they run in process,
 * over HTTP or from a script.
 */

/** CLI exit codes: 1 a failure or a problem found, 2 fix the command line, configuration or credentials. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface ErrorSpec {
  /** HTTP status of the problem+json answer. 5xx codes are server faults: logged, their message not sent. */
  status: number;
  /** The problem's `title`. */
  title: string;
  /** The CLI's exit code when a command fails with this code. */
  exit: typeof EXIT_FAILURE | typeof EXIT_USAGE;
}

/** Every code, exhaustively: a new code that is not mapped here does not compile. */
export const ERRORS = {
  validation_failed: { status: 400, title: 'Validation failed', exit: EXIT_USAGE },
  unauthorized: { status: 401, title: 'Unauthorized', exit: EXIT_USAGE },
  forbidden: { status: 403, title: 'Forbidden', exit: EXIT_USAGE },
  not_found: { status: 404, title: 'Not found', exit: EXIT_FAILURE },
  id_conflict: { status: 409, title: 'Run id conflict', exit: EXIT_FAILURE },
  run_finished: { status: 409, title: 'Run already finished', exit: EXIT_FAILURE },
  version_mismatch: { status: 409, title: 'Version mismatch', exit: EXIT_FAILURE },
  key_conflict: { status: 409, title: 'Key conflict', exit: EXIT_FAILURE },
  invalid_transition: { status: 409, title: 'Invalid status transition', exit: EXIT_FAILURE },
  payload_too_large: { status: 413, title: 'Payload too large', exit: EXIT_FAILURE },
  rate_limited: { status: 429, title: 'Too many requests', exit: EXIT_FAILURE },
  run_active: { status: 409, title: 'Another exclusive run is live', exit: EXIT_FAILURE },
  // The run was pruned by retention: its tombstone (with the final chain head) is all that is left.
  pruned: { status: 410, title: 'Run pruned', exit: EXIT_FAILURE },
  cursor_expired: { status: 410, title: 'Change cursor expired', exit: EXIT_FAILURE },
  // Faults of the server's own set-up: a client never causes them, so they are 500s.
  data_dir_locked: { status: 500, title: 'Data directory locked', exit: EXIT_USAGE },
  migration_mismatch: { status: 500, title: 'Migration mismatch', exit: EXIT_USAGE },
  configuration: { status: 500, title: 'Configuration error', exit: EXIT_USAGE },
  internal_error: { status: 500, title: 'Internal server error', exit: EXIT_FAILURE },
  unavailable: { status: 503, title: 'Service unavailable', exit: EXIT_USAGE },
  // The store's disk is (nearly) full: writes are refused until space is freed; reads go on.
  storage_full: { status: 507, title: 'Insufficient storage', exit: EXIT_USAGE },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** True for a string that is one of the ledger's codes (e.g. read from a problem+json body). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

export interface ErrorDetail {
  /** Dotted path of the offending field, e.g. `events.3.type`. */
  field?: string;
  message: string;
  [extra: string]: unknown;
}

export class LedgerError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[];

  constructor(code: ErrorCode, message: string, opts: { details?: ErrorDetail[]; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = opts.details ?? [];
  }

  toJSON() {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** Bad input: names the field, echoes the value, says what is allowed. */
export class ValidationError extends LedgerError {
  constructor(message: string, details: ErrorDetail[] = [], cause?: unknown) {
    super('validation_failed', message, { details, cause });
  }
}

export class NotFoundError extends LedgerError {
  constructor(message: string) {
    super('not_found', message);
  }

  /** The one wording of "no such run", wherever a run is looked up by id. */
  static run(runId: string, namespace: string): NotFoundError {
    return new NotFoundError(`run ${runId} not found in namespace ${namespace}`);
  }
}

/** Same run id, different identity (job, subject, trigger, actor, parentId, params). */
export class IdConflictError extends LedgerError {
  constructor(runId: string, fields: string[]) {
    super('id_conflict', `run ${runId} already exists with a different ${fields.join(', ')}`, {
      details: fields.map((field) => ({ field, message: `differs from the stored run` })),
    });
  }

  /** The identity fields that differ (one detail each, so the client's rebuilt error has them too). */
  get fields(): string[] {
    return this.details.map((d) => d.field!);
  }
}

export class InvalidTransitionError extends LedgerError {
  constructor(runId: string, from: string, to: string, allowed: readonly string[]) {
    super(
      'invalid_transition',
      `run ${runId} cannot go from ${from} to ${to}; from ${from} it may go to ${allowed.length ? allowed.join(', ') : 'nothing (terminal)'}`,
      { details: [{ field: 'status', message: `from ${from}`, from, to, allowed }] },
    );
  }
}

/** The run is terminal and the request would change it. */
export class RunFinishedError extends LedgerError {
  constructor(runId: string, status: string, what: string) {
    super('run_finished', `run ${runId} is already ${status}; ${what}`, {
      details: [{ field: 'status', message: `run is ${status}`, status }],
    });
  }
}

export class VersionMismatchError extends LedgerError {
  constructor(runId: string, expected: number, actual: number) {
    super('version_mismatch', `run ${runId} is at version ${actual}, not ${expected}`, {
      details: [{ field: 'version', message: `expected ${expected}, found ${actual}`, expected, actual }],
    });
  }
}

/** An idempotency key (event key, checkpoint name, external id key) reused with other content. */
export class KeyConflictError extends LedgerError {
  constructor(message: string, details: ErrorDetail[] = []) {
    super('key_conflict', message, { details });
  }
}

/** An embedded data directory is held by another process. */
export class DataDirLockedError extends LedgerError {
  readonly pid: number;
  readonly serverUrl: string | undefined;
  constructor(dataDir: string, pid: number, serverUrl?: string) {
    super(
      'data_dir_locked',
      `data directory ${dataDir} is in use by process ${pid}` +
        (serverUrl ? ` (a runledger server at ${serverUrl}; use --server ${serverUrl})` : '') +
        '; an embedded ledger can be opened by one process at a time',
    );
    this.pid = pid;
    this.serverUrl = serverUrl;
  }
}

export class MigrationError extends LedgerError {
  constructor(message: string) {
    super('migration_mismatch', message);
  }
}

/** An exclusive start while another exclusive run of the same (job, subject) is live. */
export class RunActiveError extends LedgerError {
  readonly activeRunId: string;
  constructor(job: string, subject: string | null, activeRunId: string) {
    super(
      'run_active',
      `run ${activeRunId} of job ${job}${subject === null ? '' : ` for subject ${subject}`} is still live; an exclusive run starts only when it has finished`,
      { details: [{ field: 'exclusive', message: 'another exclusive run is live', activeRunId }] },
    );
    this.activeRunId = activeRunId;
  }
  /** Extension members of the problem+json answer. */
  get extensions(): Record<string, unknown> {
    return { activeRunId: this.activeRunId };
  }
}

/** The run was pruned under the namespace's retention rules; `tombstone` holds its final chain head. */
export class PrunedError extends LedgerError {
  readonly tombstone: Record<string, unknown>;
  constructor(message: string, tombstone: Record<string, unknown>) {
    super('pruned', message, { details: [{ field: 'id', message: 'pruned', prunedAt: tombstone.prunedAt }] });
    this.tombstone = tombstone;
  }
  /** Extension members of the problem+json answer. */
  get extensions(): Record<string, unknown> {
    return { tombstone: this.tombstone };
  }
}

/** A change cursor older than what the change log still holds (pruned): resume at `oldest` to skip the gap knowingly. */
export class CursorExpiredError extends LedgerError {
  constructor(field: string, cursor: string, oldest: string) {
    super(
      'cursor_expired',
      `${field} ${cursor} is older than the change log keeps: changes up to ${oldest} were pruned, so reading on from ${cursor} would skip some. ` +
        `Resume from ${oldest} (accepting the gap) or re-read the current state and start from now`,
      { details: [{ field, message: 'pruned', cursor, oldest }] },
    );
  }
}

export class ConfigurationError extends LedgerError {
  constructor(message: string, cause?: unknown) {
    super('configuration', message, { cause });
  }
}

/**
 * The store's disk is full, or below the free-space reserve the embedded store keeps so that
 * PGlite never meets ENOSPC (a WAL write that fails there wedges the WASM instance).
 */
export class StorageFullError extends LedgerError {
  constructor(message: string, cause?: unknown) {
    super('storage_full', message, { cause });
  }
}
