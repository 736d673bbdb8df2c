/** runledger's public API. Everything else is internal. */
export { type ClientOptions, createClient, HttpError, type RunledgerClient, type TailOptions, type TailResult } from './client/client.js';
export {
  type Change,
  CHANGE_TYPES,
  type ChangePage,
  type ChangesQuery,
  type ChangeType,
  type Watcher,
  type WatchOptions,
} from './core/changes.js';
export * from './core/errors.js';
export { canonicalJson, chainHash, checkpointHash } from './core/hash.js';
export { isTerminal, TERMINAL_STATUSES, TRANSITIONS } from './core/status.js';
export { trackRun } from './core/track.js';
export type * from './core/types.js';
export { EVENT_LEVELS, RUN_STATUSES } from './core/types.js';
export { LIMITS } from './core/validation.js';
export {
  ImportFailedError,
  type ImportInput,
  type ImportReport,
  type InvalidRecord,
  runImport,
  type RunImportOptions,
} from './import/index.js';
export { SqlLedger } from './ledger/ledger.js';
export { DEFAULT_DATA_DIR, type OpenedLedger, openLedger, type OpenLedgerOptions } from './ledger/open.js';
export { buildServer, type BuildServerOptions, type RateLimitHook } from './server/app.js';
export { type RunningServer, startServer, type StartServerOptions } from './server/serve.js';
export { authenticate, createToken, listTokens, revokeToken, type Scope, type TokenInfo } from './server/tokens.js';
