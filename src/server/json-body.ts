/**
 * Request bodies are parsed strictly, because what the ledger accepts must read back
 * exactly: bytes that are not UTF-8 (JSON.parse of a lossy decode would store U+FFFD) and a
 * declared charset other than UTF-8 are refused here; duplicate keys, integers JSON.parse
 * would round and prototype keys by core/strict-json.ts, naming where they are.
 */
import { jsonTextProblem } from '../core/strict-json.js';
import { HttpProblem } from './problem.js';

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The charset a content-type declares, lower-cased, or undefined. */
function charsetOf(contentType: string | undefined): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '')?.[1]?.toLowerCase();
}

function refused(message: string, field = 'body'): HttpProblem {
  return new HttpProblem(400, 'validation_failed', message, [{ field, message }]);
}

/** Decodes the raw body as UTF-8 (the only charset JSON has, RFC 8259 §8.1), refusing anything else. */
export function decodeJsonBody(raw: Buffer, contentType: string | undefined): string {
  const charset = charsetOf(contentType);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8')
    throw new HttpProblem(415, 'validation_failed', `charset ${JSON.stringify(charset)} is not supported; JSON bodies must be UTF-8`, [
      { field: 'content-type', message: 'unsupported charset' },
    ]);
  try {
    return UTF8.decode(raw);
  } catch {
    // Where: the bytes before the first replacement character decoded cleanly.
    const lossy = raw.toString('utf8');
    const near = Buffer.byteLength(lossy.slice(0, Math.max(0, lossy.indexOf('\ufffd'))));
    throw refused(`request body is not valid UTF-8 (a malformed byte sequence at byte ${near}); JSON bodies must be UTF-8`);
  }
}

/** Parses a request body strictly (see the top of this file). */
export function parseJsonBody(raw: Buffer, contentType: string | undefined): unknown {
  const text = decodeJsonBody(raw, contentType);
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpProblem(400, 'validation_failed', `request body is not valid JSON: ${(err as Error).message}`, [
      { field: 'body', message: 'malformed JSON' },
    ]);
  }
  const problem = jsonTextProblem(text);
  if (problem) throw refused(problem.message, problem.field);
  return value;
}
