/**
 * Named errors with stable codes. The HTTP layer maps `code` to a status in one place
 * (server/problem.ts) and the client maps it back, so callers can branch on `code`
 * whether they run in process or over HTTP.
 */

export type ErrorCode =
  | 'validation_failed'
  | 'not_found'
  | 'id_conflict'
  | 'invalid_transition'
  | 'run_finished'
  | 'version_mismatch'
  | 'key_conflict'
  | 'unauthorized'
  | 'forbidden'
  | 'payload_too_large'
  | 'rate_limited'
  | 'data_dir_locked'
  | 'migration_mismatch'
  | 'configuration';

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
}

/** Same run id, different identity (job, subject, trigger, actor, parentId, params). */
export class IdConflictError extends LedgerError {
  readonly fields: string[];
  constructor(runId: string, fields: string[]) {
    super('id_conflict', `run ${runId} already exists with a different ${fields.join(', ')}`, {
      details: fields.map((field) => ({ field, message: `differs from the stored run` })),
    });
    this.fields = fields;
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

export class ConfigurationError extends LedgerError {
  constructor(message: string, cause?: unknown) {
    super('configuration', message, { cause });
  }
}
