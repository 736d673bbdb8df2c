/**
 * Request limits that the zod schemas cannot express, checked before them (docs/limits.md
 * lists every limit):
 * - JSON nesting: a body nests at most `jsonDepth` arrays/objects (default 64). Deeper
 *   bodies would exhaust the stack of the recursive validators and hashers.
 * - Text PostgreSQL cannot store faithfully: the character U+0000 and unpaired UTF-16
 *   surrogates (`"\ud800"`) anywhere in the body, the query or the path. PostgreSQL
 *   refuses the first and would store U+FFFD for the second, so the stored text would
 *   differ from the text that was hashed.
 * - Malformed requests Fastify refuses before routing (a bad %-escape in the path, a
 *   request line or headers over Node's 16 KB) are answered as problem+json too.
 * The walk is iterative, so no input can overflow the stack here.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

import type { FastifyInstance, FastifyReply, FastifyServerOptions } from 'fastify';

import { textProblem } from '../core/validation.js';
import { HttpProblem, problem, PROBLEM_TYPE, toProblem } from './problem.js';

export const DEFAULT_JSON_DEPTH = 64;

export interface LimitOptions {
  /** Deepest nesting of arrays/objects in a request body, the body itself being level 1 (default 64). */
  jsonDepth?: number;
}

const shown = (path: (string | number)[]) => {
  const text = path.join('.');
  return text.length > 120 ? `${text.slice(0, 60)}…${text.slice(-59)}` : text;
};

/** A node still to visit; the path is rebuilt from `parent` links only when reporting. */
interface Frame {
  v: unknown;
  depth: number;
  key: string | number | null;
  parent: Frame | null;
  /** Under the top-level key whose text is not checked here (textExemptKey). */
  exempt: boolean;
}

function pathOf(frame: Frame | null, last?: string | number): (string | number)[] {
  const path: (string | number)[] = last === undefined ? [] : [last];
  for (let f = frame; f && f.key !== null; f = f.parent) path.unshift(f.key);
  return path;
}

/**
 * Checks a parsed request part: nesting depth (for bodies) and text. Throws a 400
 * validation_failed naming the field.
 */
export function checkRequestValue(value: unknown, part: 'body' | 'query' | 'params', maxDepth: number, textExemptKey?: string): void {
  const stack: Frame[] = [{ v: value, depth: 0, key: null, parent: null, exempt: false }];
  while (stack.length) {
    const frame = stack.pop()!;
    const { v, depth } = frame;
    if (typeof v === 'string') {
      const bad = frame.exempt ? null : textProblem(v);
      if (bad) {
        const field = shown(pathOf(frame)) || part;
        throw new HttpProblem(400, 'validation_failed', `${field} ${bad}`, [{ field, message: bad }]);
      }
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > maxDepth && part === 'body') {
      const message = `nests deeper than ${maxDepth} levels of arrays and objects`;
      const field = shown(pathOf(frame)) || part;
      throw new HttpProblem(400, 'validation_failed', `request body ${message} (at ${field}); flatten it or store it as a string`, [
        { field, message, limit: maxDepth },
      ]);
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], depth: depth + 1, key: i, parent: frame, exempt: frame.exempt });
      continue;
    }
    for (const key of Object.keys(v)) {
      const bad = frame.exempt ? null : textProblem(key);
      if (bad) {
        const where = shown(pathOf(frame, JSON.stringify(key)));
        throw new HttpProblem(400, 'validation_failed', `the key ${where} ${bad}`, [{ field: where, message: bad }]);
      }
      // An import batch reports bad text per record (importRuns), so one bad record never refuses the rest.
      const exempt = frame.exempt || (frame.parent === null && key === textExemptKey);
      stack.push({ v: (v as Record<string, unknown>)[key], depth: depth + 1, key, parent: frame, exempt });
    }
  }
}

/** Registers the checks (before validation, so before any recursive schema sees the input). */
export function registerLimits(app: FastifyInstance, opts: LimitOptions = {}): void {
  const maxDepth = opts.jsonDepth ?? DEFAULT_JSON_DEPTH;
  if (!Number.isInteger(maxDepth) || maxDepth < 2)
    throw new RangeError(`jsonDepth must be a whole number ≥ 2; got ${JSON.stringify(maxDepth)}`);
  app.addHook('preValidation', (request, _reply, done) => {
    try {
      checkRequestValue(request.params, 'params', maxDepth);
      checkRequestValue(request.query, 'query', maxDepth);
      if (request.body !== undefined) {
        checkRequestValue(request.body, 'body', maxDepth, request.routeOptions.url === '/v1/imports' ? 'runs' : undefined);
      }
    } catch (err) {
      return done(err as Error);
    }
    done();
  });
}

/**
 * Fastify options so that requests refused before routing are problem+json too:
 * a path with a malformed %-escape (400), and what Node's HTTP parser refuses (a request
 * line or headers over 16 KB: 431; anything malformed: 400).
 */
export function frameworkErrorOptions(): Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler'> {
  return {
    frameworkErrors(err, _request, reply) {
      const { problem: p } = toProblem(err, { bodyLimit: 0 });
      void (reply as FastifyReply).code(p.status).type(PROBLEM_TYPE).send(p);
    },
    clientErrorHandler(err: Error & { code?: string }, socket: Socket) {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const body = JSON.stringify(
        problem(
          status,
          'validation_failed',
          status === 431
            ? 'the request line and headers exceed 16 KB; send long filters in fewer, shorter parameters'
            : status === 408
              ? 'the request did not arrive in time: the whole request, body included, must be sent within the server’s request timeout'
              : 'malformed HTTP request',
        ),
      );
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: ${PROBLEM_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    },
  };
}
