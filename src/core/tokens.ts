/** API token shapes shared by the server (which keeps them) and the HTTP client (which manages them). */
export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** A token as listed: never its secret. */
export interface TokenInfo {
  id: string;
  namespace: string;
  scope: Scope;
  name: string | null;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** A token just created: `token` is shown only here; only its hash is stored. */
export interface CreatedToken {
  id: string;
  token: string;
  namespace: string;
  scope: Scope;
}
