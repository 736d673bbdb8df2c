/**
 * The one place where errors become HTTP responses: RFC 9457 problem details
 * (`application/problem+json`) carrying the ledger's stable `code`. The client maps
 * `code` back to the same LedgerError subclass. A 500 never shows internals.
 */
import { type ErrorCode, type ErrorDetail, ERRORS, LedgerError } from '../core/errors.js';

export const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';

/** Problem details as sent on the wire. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors: ErrorDetail[];
}

export function problem(status: number, code: ErrorCode, detail: string, errors: ErrorDetail[] = []): Problem {
  return { type: `urn:runledger:problem:${code}`, title: ERRORS[code].title, status, detail, code, errors };
}

/** The error a handler throws for an HTTP-level refusal that has a ledger code. */
export class HttpProblem extends LedgerError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    details: ErrorDetail[] = [],
  ) {
    super(code, message, { details });
  }
}

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  message?: string;
}

// Fastify's own client errors (FST_ERR_*), by status, mapped onto ledger codes.
const CODE_OF_STATUS: Record<number, ErrorCode> = {
  400: 'validation_failed',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'not_found',
  406: 'validation_failed',
  411: 'validation_failed',
  413: 'payload_too_large',
  414: 'validation_failed',
  415: 'validation_failed',
  429: 'rate_limited',
  431: 'validation_failed',
};

// Connection refused or lost, the database shutting down or restarting (SQLSTATE classes 08 and 57P), too many connections.
const DB_UNAVAILABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '08000',
  '08001',
  '08003',
  '08006',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

/**
 * Maps any thrown value to a problem. `internal` is true when it is a server fault that
 * must be logged (its message is not sent).
 */
export function toProblem(err: unknown, ctx: { bodyLimit: number; contentType?: string }): { problem: Problem; internal: boolean } {
  const { bodyLimit } = ctx;
  if (err instanceof HttpProblem) return { problem: problem(err.status, err.code, err.message, err.details), internal: false };
  if (err instanceof LedgerError) {
    const { status } = ERRORS[err.code];
    const extensions = (err as { extensions?: Record<string, unknown> }).extensions;
    if (status < 500) return { problem: { ...problem(status, err.code, err.message, err.details), ...extensions }, internal: false };
    // A full disk is the operator's to fix, and the message (where, how much is free) says how.
    if (err.code === 'storage_full') return { problem: problem(507, 'storage_full', err.message, err.details), internal: false };
    if (err.code === 'unavailable')
      return { problem: problem(503, 'unavailable', 'the database is unavailable; try again'), internal: true };
    return { problem: problem(500, 'internal_error', 'internal server error'), internal: true };
  }
  const e = (err ?? {}) as FastifyLikeError;
  const status = e.statusCode;
  if (status && status >= 400 && status < 500) {
    switch (e.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return {
          problem: problem(413, 'payload_too_large', `request body exceeds the limit of ${bodyLimit} bytes`, [
            { field: 'body', message: `larger than ${bodyLimit} bytes`, limit: bodyLimit },
          ]),
          internal: false,
        };
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return {
          problem: problem(
            415,
            'validation_failed',
            `content-type ${JSON.stringify(ctx.contentType ?? '')} is not supported; send the body as application/json`,
            [{ field: 'content-type', message: 'unsupported media type' }],
          ),
          internal: false,
        };
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return {
          problem: problem(400, 'validation_failed', `request body is not valid JSON: ${e.message}`, [
            { field: 'body', message: 'malformed JSON' },
          ]),
          internal: false,
        };
    }
    const code = CODE_OF_STATUS[status] ?? 'validation_failed';
    return { problem: problem(status, code, e.message ?? code), internal: false };
  }
  if (e.code && DB_UNAVAILABLE.has(e.code)) {
    return { problem: problem(503, 'unavailable', 'the database is unavailable; try again'), internal: true };
  }
  return { problem: problem(500, 'internal_error', 'internal server error'), internal: true };
}
