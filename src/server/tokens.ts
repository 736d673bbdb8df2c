/**
 * API tokens. A token is `rl_<id>_<secret>`; only sha256(token) is stored. Lookup is by
 * the public id part, and the hash is compared in constant time, so neither the query
 * nor the comparison depends on the secret. Each token is bound to one namespace and
 * one scope (read < write < admin). Revocation takes effect on the next request: there
 * is no cache.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import { z } from 'zod';

import { NotFoundError } from '../core/errors.js';
import { type CreatedToken, type Scope, SCOPES, type TokenInfo } from '../core/tokens.js';
import { namespaceSchema, parseInput } from '../core/validation.js';
import type { Database } from '../store/database.js';

export { SCOPES };
export type { CreatedToken, Scope, TokenInfo };

/** The token of an `Authorization: Bearer <token>` header, or null when the header is not that. */
export function bearerToken(header: string | undefined): string | null {
  return (header && /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1]) || null;
}

/** Whether a token of scope `have` may do what needs scope `need`. */
export function scopeAllows(have: Scope, need: Scope): boolean {
  return SCOPES.indexOf(have) >= SCOPES.indexOf(need);
}

interface TokenRow {
  id: string;
  namespace: string;
  scope: Scope;
  name: string | null;
  token_hash: string;
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const TOKEN_PATTERN = /^rl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const createSchema = z.strictObject({
  namespace: namespaceSchema,
  scope: z.enum(SCOPES, { error: `scope must be one of ${SCOPES.join(', ')}` }),
  name: z.string().min(1, 'name must be 1–200 characters').max(200, 'name must be 1–200 characters').optional(),
});

const hashOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

const toInfo = (r: TokenRow): TokenInfo => ({
  id: r.id,
  namespace: r.namespace,
  scope: r.scope,
  name: r.name,
  createdAt: new Date(r.created_at).toISOString(),
  revokedAt: r.revoked_at ? new Date(r.revoked_at).toISOString() : null,
  lastUsedAt: r.last_used_at ? new Date(r.last_used_at).toISOString() : null,
});

/**
 * Creates a token; the returned `token` is shown once and never stored.
 * @example
 * const { id, token } = await createToken(ledger.database, { namespace: 'team-a', scope: 'write', name: 'ci' });
 */
export async function createToken(db: Database, input: { namespace: string; scope: Scope | string; name?: string }): Promise<CreatedToken> {
  const { namespace, scope, name } = parseInput(createSchema, input);
  const id = randomBytes(8).toString('hex');
  const token = `rl_${id}_${randomBytes(32).toString('base64url')}`;
  await db.query(`insert into tokens (id, namespace, scope, name, token_hash, created_at) values ($1, $2, $3, $4, $5, now())`, [
    id,
    namespace,
    scope,
    name ?? null,
    hashOf(token),
  ]);
  return { id, token, namespace, scope };
}

/** Every token (without secrets), newest first; only `namespace`'s when given. */
export async function listTokens(db: Database, opts: { namespace?: string } = {}): Promise<TokenInfo[]> {
  const { rows } = await db.query<TokenRow>(`select * from tokens where $1::text is null or namespace = $1 order by created_at desc, id`, [
    opts.namespace ?? null,
  ]);
  return rows.map(toInfo);
}

/**
 * Revokes a token at once. Revoking a revoked token is a no-op; an unknown id (or, with
 * `namespace`, another namespace's) is `not_found`.
 */
export async function revokeToken(db: Database, id: string, opts: { namespace?: string } = {}): Promise<TokenInfo> {
  const { rows } = await db.query<TokenRow>(
    `update tokens set revoked_at = coalesce(revoked_at, now()) where id = $1 and ($2::text is null or namespace = $2) returning *`,
    [String(id).replace(/^rl_/, ''), opts.namespace ?? null],
  );
  if (!rows[0]) {
    const where = opts.namespace === undefined ? '' : ` in namespace ${opts.namespace}`;
    throw new NotFoundError(`token ${JSON.stringify(id)} not found${where}; list tokens with \`runledger tokens ls\``);
  }
  return toInfo(rows[0]);
}

// last_used_at is bookkeeping: write it at most once a minute per token, not on every request.
const LAST_USED_EVERY_MS = 60_000;
const lastUsedWritten = new Map<string, number>();

/** The token's identity, or null when it is malformed, unknown or revoked. */
export async function authenticate(db: Database, token: string): Promise<{ id: string; namespace: string; scope: Scope } | null> {
  const m = TOKEN_PATTERN.exec(token);
  if (!m) return null;
  const { rows } = await db.query<TokenRow>(`select * from tokens where id = $1`, [m[1]]);
  const row = rows[0];
  if (!row) return null;
  const given = Buffer.from(hashOf(token), 'hex');
  const stored = Buffer.from(row.token_hash, 'hex');
  if (given.length !== stored.length || !timingSafeEqual(given, stored)) return null;
  if (row.revoked_at) return null;
  const now = Date.now();
  if (now - (lastUsedWritten.get(row.id) ?? 0) > LAST_USED_EVERY_MS) {
    lastUsedWritten.set(row.id, now);
    db.query(`update tokens set last_used_at = now() where id = $1`, [row.id]).catch(() => {});
  }
  return { id: row.id, namespace: row.namespace, scope: row.scope };
}
