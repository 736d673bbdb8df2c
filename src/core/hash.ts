import { createHash } from 'node:crypto';

import canonicalizeModule from 'canonicalize';

import type { Json } from './types.js';

// canonicalize is CommonJS with an ESM-style declaration: take the function from either shape.
const canonicalize = ((canonicalizeModule as unknown as { default?: unknown }).default ?? canonicalizeModule) as (
  v: unknown,
) => string | undefined;

/** RFC 8785 canonical JSON. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value cannot be represented as JSON');
  return text;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The fields of an event covered by its hash. */
export interface ChainedEventFields {
  at: string;
  body: Json;
  key: string | null;
  level: string | null;
  seq: number;
  type: string;
}

/**
 * The canonical JSON of an event split around `seq`, which only the database knows
 * when the event is appended in one statement. RFC 8785 orders keys
 * at < body < key < level < seq < type, so `head + ',"seq":' + seq + tail` is exactly
 * the canonical JSON of the whole event (null key/level are omitted).
 */
export function eventCanonicalParts(e: Omit<ChainedEventFields, 'seq'>): { head: string; tail: string } {
  const before: Record<string, unknown> = { at: e.at, body: e.body };
  if (e.key !== null) before.key = e.key;
  if (e.level !== null) before.level = e.level;
  const head = canonicalJson(before).slice(0, -1);
  const tail = `,"type":${canonicalJson(e.type)}}`;
  return { head, tail };
}

/** hash = sha256(previousHash + canonical JSON of the event); the first event chains from ''. */
export function chainHash(previousHash: string, e: ChainedEventFields): string {
  const { head, tail } = eventCanonicalParts(e);
  return sha256Hex(previousHash + head + `,"seq":${e.seq}` + tail);
}

/**
 * The same hash computed by PostgreSQL, for statements that append an event in one
 * round trip. `$prev`, `$seq` are SQL expressions; `head`/`tail` come from eventCanonicalParts.
 */
export function sqlChainHash(prevExpr: string, headParam: string, seqExpr: string, tailParam: string): string {
  return `encode(sha256(convert_to(${prevExpr} || ${headParam} || ',"seq":' || (${seqExpr})::text || ${tailParam}, 'UTF8')), 'hex')`;
}

/** Checkpoint content hash: sha256 of the canonical JSON of { name, kind, ref, metadata, data }. */
export function checkpointHash(c: { name: string; kind: string | null; ref: string | null; metadata: Json; data: Json | null }): string {
  return sha256Hex(canonicalJson({ name: c.name, kind: c.kind, ref: c.ref, metadata: c.metadata, data: c.data }));
}
