/**
 * createClient(): the `Ledger` interface over HTTP. Inputs are checked with the same
 * schemas as the library (so a bad call fails the same way, without a round trip), run
 * ids are generated here so that a retried create is safe, and server problems come
 * back as the same LedgerError subclasses with the same `code` and message.
 */
import { type ChangePage, type ChangesQuery, changesQuerySchema, parseCursor, type Watcher, type WatchOptions } from '../core/changes.js';
import { LedgerError, ValidationError } from '../core/errors.js';
import { newRunId } from '../core/ids.js';
import { type CreatedToken, type Scope, type TokenInfo } from '../core/tokens.js';
import { trackRun } from '../core/track.js';
import type {
  AppendResult,
  CancelInput,
  Checkpoint,
  CheckpointInput,
  CheckpointResult,
  CompleteInput,
  EventInput,
  EventOptions,
  EventPage,
  Expectation,
  ExpectationInput,
  ExportPage,
  ExportQuery,
  FailInput,
  ImportOptions,
  ImportResult,
  Json,
  Ledger,
  ListEventsOptions,
  ListRunsFilter,
  ListSubjectsFilter,
  PruneOptions,
  PruneResult,
  ReapResult,
  RestoreResult,
  RetentionRule,
  RetentionRules,
  RetryInput,
  Run,
  RunHandle,
  RunPage,
  StartedRun,
  StartRunInput,
  StatsQuery,
  StatsResult,
  SubjectDetail,
  SubjectPage,
  TrackedRun,
  TrackOptions,
  UpdateRunInput,
  VerifyResult,
} from '../core/types.js';
import {
  cancelSchema,
  checkpointInputSchema,
  completeSchema,
  eventBatchSchema,
  expectationInputSchema,
  exportQuerySchema,
  failSchema,
  importOptionsSchema,
  json,
  listEventsSchema,
  listRunsSchema,
  listSubjectsSchema,
  namespaceSchema,
  parseInput,
  parseVerifyTarget,
  pruneOptionsSchema,
  retentionRulesSchema,
  retrySchema,
  runIdSchema,
  sourceSchema,
  startRunSchema,
  statsSchema,
  updateRunSchema,
} from '../core/validation.js';
import {
  type CreatedWebhook,
  type Delivery,
  type DeliveryQuery,
  deliveryQuerySchema,
  parseWebhookId,
  type ReplayInput,
  replayInputSchema,
  type ReplayResult,
  type Webhook,
  type WebhookInput,
  webhookInputSchema,
} from '../core/webhooks.js';
import { newAgent, request, type RequestSpec, type Transport } from './http.js';
import { type TailOptions, type TailResult, tailRun } from './tail.js';
import { watchOverHttp } from './watch.js';

export { HttpError } from './http.js';
export type { TailOptions, TailResult } from './tail.js';

export interface ClientOptions {
  /** The server, e.g. `http://127.0.0.1:7070`. */
  baseUrl: string;
  /** API token (`rl_…`), sent as `Authorization: Bearer`. */
  token?: string;
  /** Namespace addressed (default `default`). */
  namespace?: string;
  /**
   * A fetch implementation for every call (default: the client's own undici keep-alive
   * pool for calls, and the global fetch for live tails).
   */
  fetch?: typeof fetch;
  /** Retries of a failed idempotent call (default 3). */
  retries?: number;
  /** Per-request timeout in ms (default 60000). */
  timeoutMs?: number;
}

/** The `Ledger` over HTTP, plus live tailing. */
export interface RunledgerClient extends Ledger {
  readonly baseUrl: string;
  inNamespace(namespace: string): RunledgerClient;
  /**
   * Follows a run's events live until its terminal status event.
   * @example
   * await client.tail(runId, { onEvent: (e) => console.log(e.seq, e.type) });
   */
  tail(runId: string, opts: TailOptions): Promise<TailResult>;
  /** Creates a token for this namespace (admin scope); the answer's `token` is shown only now. */
  createToken(input: { scope: Scope; name?: string }): Promise<CreatedToken>;
  /** This namespace's tokens, newest first, without secrets (admin scope). */
  listTokens(): Promise<TokenInfo[]>;
  /** Revokes one of this namespace's tokens (admin scope); revoking twice is a no-op. */
  revokeToken(id: string): Promise<TokenInfo>;
}

const runPath = (id: string, rest = '') => `/v1/runs/${encodeURIComponent(id)}${rest}`;
const parseRunId = (id: unknown) => parseInput(runIdSchema, id, 'id');

class HttpRunHandle implements RunHandle {
  constructor(
    protected readonly client: HttpLedger,
    readonly id: string,
  ) {}

  private call<T>(spec: Omit<RequestSpec, 'path'> & { rest?: string }): Promise<T> {
    return this.client.send<T>({ ...spec, path: runPath(this.id, spec.rest) });
  }

  async get(): Promise<Run> {
    return this.call({ method: 'GET', idempotent: true });
  }
  async start(): Promise<Run> {
    // A repeated start of a running run returns it unchanged.
    return this.call({ method: 'POST', rest: '/start', idempotent: true });
  }
  async heartbeat(progress?: Json): Promise<Run> {
    if (progress !== undefined) parseInput(json, progress, 'progress');
    return this.call({ method: 'POST', rest: '/heartbeat', body: progress === undefined ? {} : { progress }, idempotent: true });
  }
  async event(type: string, body?: Json, opts: EventOptions = {}): Promise<AppendResult> {
    const [result] = await this.events([{ type, ...(body !== undefined ? { body } : {}), ...opts }]);
    return result;
  }
  async events(events: EventInput[]): Promise<AppendResult[]> {
    parseInput(eventBatchSchema, events, 'events');
    // A batch is safe to resend only when every event carries an idempotency key.
    const keyed = events.every((e) => e.key !== undefined);
    const res = await this.call<{ results: AppendResult[] }>({ method: 'POST', rest: '/events', body: { events }, idempotent: keyed });
    return res.results;
  }
  async listEvents(opts: ListEventsOptions = {}): Promise<EventPage> {
    parseInput(listEventsSchema, opts);
    return this.call({ method: 'GET', rest: '/events', query: { ...opts }, idempotent: true });
  }
  async checkpoint(input: CheckpointInput): Promise<CheckpointResult> {
    parseInput(checkpointInputSchema, input);
    const res = await this.client.sendRaw<Checkpoint>({
      method: 'POST',
      path: runPath(this.id, '/checkpoints'),
      body: input,
      idempotent: true,
    });
    return { checkpoint: res.body, created: res.status === 201 };
  }
  async getCheckpoint(name: string): Promise<Checkpoint> {
    return this.call({ method: 'GET', rest: `/checkpoints/${encodeURIComponent(name)}`, idempotent: true });
  }
  async listCheckpoints(): Promise<Checkpoint[]> {
    const res = await this.call<{ checkpoints: Checkpoint[] }>({ method: 'GET', rest: '/checkpoints', idempotent: true });
    return res.checkpoints;
  }
  async complete(input: CompleteInput = {}): Promise<Run> {
    parseInput(completeSchema, input);
    return this.call({ method: 'POST', rest: '/complete', body: input, idempotent: true });
  }
  async fail(input: FailInput): Promise<Run> {
    parseInput(failSchema, input);
    return this.call({ method: 'POST', rest: '/fail', body: input, idempotent: true });
  }
  async cancel(input: CancelInput = {}): Promise<Run> {
    parseInput(cancelSchema, input);
    return this.call({ method: 'POST', rest: '/cancel', body: input, idempotent: true });
  }
  async retry(input: RetryInput = {}): Promise<Run> {
    parseInput(retrySchema, input);
    return this.call({ method: 'POST', rest: '/retry', body: input, idempotent: false });
  }
  async setExternalIds(ids: Record<string, string>): Promise<Run> {
    return this.update({ externalIds: ids });
  }
  async update(input: UpdateRunInput): Promise<Run> {
    const { ifVersion, ...body } = parseInput(updateRunSchema, input);
    return this.call({
      method: 'PATCH',
      body,
      ...(ifVersion !== undefined ? { headers: { 'if-match': `"${ifVersion}"` } } : {}),
      // A compare-and-set that succeeded would fail when repeated; anything else merges to the same result.
      idempotent: ifVersion === undefined,
    });
  }
  async verify(): Promise<VerifyResult> {
    return this.call({ method: 'GET', rest: '/verify', idempotent: true });
  }
}

class HttpStartedRun extends HttpRunHandle implements StartedRun {
  constructor(
    client: HttpLedger,
    readonly run: Run,
    readonly created: boolean,
  ) {
    super(client, run.id);
  }
}

class HttpLedger implements RunledgerClient {
  readonly baseUrl: string;

  constructor(
    private readonly transport: Transport,
    readonly namespace: string,
  ) {
    this.baseUrl = transport.baseUrl;
  }

  /** @internal */
  async sendRaw<T>(spec: RequestSpec) {
    return request<T>(this.transport, { ...spec, query: { ...spec.query, namespace: this.namespace } });
  }
  /** @internal */
  async send<T>(spec: RequestSpec): Promise<T> {
    return (await this.sendRaw<T>(spec)).body;
  }

  inNamespace(namespace: string): RunledgerClient {
    return new HttpLedger(this.transport, parseInput(namespaceSchema, namespace, 'namespace'));
  }

  async startRun(input: StartRunInput): Promise<StartedRun> {
    parseInput(startRunSchema, input);
    // The id is fixed before the first attempt: a retry after a lost response finds the same run.
    const body = { ...input, id: input.id ?? newRunId() };
    const res = await this.sendRaw<Run>({ method: 'POST', path: '/v1/runs', body, idempotent: true });
    return new HttpStartedRun(this, res.body, res.status === 201);
  }
  async getRun(id: string): Promise<Run> {
    return this.send({ method: 'GET', path: runPath(parseRunId(id)), idempotent: true });
  }
  async listRuns(filter: ListRunsFilter = {}): Promise<RunPage> {
    parseInput(listRunsSchema, filter);
    return this.send({ method: 'GET', path: '/v1/runs', query: { ...filter }, idempotent: true });
  }
  run(id: string): RunHandle {
    return new HttpRunHandle(this, parseRunId(id));
  }
  async track<T>(opts: TrackOptions, fn: (run: TrackedRun) => Promise<T> | T): Promise<T> {
    return trackRun(this, opts, fn);
  }
  async listSubjects(filter: ListSubjectsFilter = {}): Promise<SubjectPage> {
    parseInput(listSubjectsSchema, filter);
    return this.send({ method: 'GET', path: '/v1/subjects', query: { ...filter }, idempotent: true });
  }
  async getSubject(job: string, subject: string): Promise<SubjectDetail> {
    return this.send({
      method: 'GET',
      path: `/v1/subjects/${encodeURIComponent(job)}/${encodeURIComponent(subject)}`,
      idempotent: true,
    });
  }
  async importRuns(source: string, records: unknown[], opts: ImportOptions = {}): Promise<ImportResult> {
    parseInput(sourceSchema, source, 'source');
    parseInput(importOptionsSchema, opts);
    if (!Array.isArray(records))
      throw new ValidationError('runs must be an array of import records', [{ field: 'runs', message: 'not an array' }]);
    // Idempotent on (source, sourceId): a resent batch reports duplicates, inserts nothing twice.
    return this.send({ method: 'POST', path: '/v1/imports', body: { source, runs: records, ...opts }, idempotent: true });
  }
  async verify(runId?: string): Promise<VerifyResult> {
    const id = parseVerifyTarget(runId);
    const path = id === undefined ? '/v1/verify' : runPath(id, '/verify');
    return this.send({ method: 'GET', path, idempotent: true });
  }
  async reap(): Promise<ReapResult> {
    return this.send({ method: 'POST', path: '/v1/reap', idempotent: true });
  }
  async setExpectation(job: string, input: ExpectationInput): Promise<Expectation> {
    parseInput(startRunSchema.shape.job, job, 'job');
    parseInput(expectationInputSchema, input);
    return this.send({ method: 'PUT', path: `/v1/expectations/${encodeURIComponent(job)}`, body: input, idempotent: true });
  }
  async listExpectations(): Promise<Expectation[]> {
    return (await this.send<{ expectations: Expectation[] }>({ method: 'GET', path: '/v1/expectations', idempotent: true })).expectations;
  }
  async deleteExpectation(job: string): Promise<boolean> {
    parseInput(startRunSchema.shape.job, job, 'job');
    try {
      await this.send({ method: 'DELETE', path: `/v1/expectations/${encodeURIComponent(job)}`, idempotent: true });
      return true;
    } catch (err) {
      if (err instanceof LedgerError && err.code === 'not_found') return false;
      throw err;
    }
  }
  async stats(query: StatsQuery = {}): Promise<StatsResult> {
    parseInput(statsSchema, query);
    return this.send({ method: 'GET', path: '/v1/stats', query: { ...query }, idempotent: true });
  }
  async changes(query: ChangesQuery = {}): Promise<ChangePage> {
    parseInput(changesQuerySchema, query);
    parseCursor(query.after);
    return this.send({ method: 'GET', path: '/v1/changes', query: { ...query }, idempotent: true });
  }
  watch(opts: WatchOptions): Watcher {
    parseInput(changesQuerySchema, { after: opts.after, types: opts.types, job: opts.job });
    parseCursor(opts.after);
    return watchOverHttp(this.transport, this.namespace, opts);
  }
  async createWebhook(input: WebhookInput): Promise<CreatedWebhook> {
    parseInput(webhookInputSchema, input);
    // Not retried: a lost answer would leave a second subscription whose secret nobody saw.
    return this.send({ method: 'POST', path: '/v1/webhooks', body: input, idempotent: false });
  }
  async listWebhooks(): Promise<Webhook[]> {
    return (await this.send<{ webhooks: Webhook[] }>({ method: 'GET', path: '/v1/webhooks', idempotent: true })).webhooks;
  }
  async getWebhook(id: string): Promise<Webhook> {
    return this.send({ method: 'GET', path: webhookPath(id), idempotent: true });
  }
  async deleteWebhook(id: string): Promise<boolean> {
    const path = webhookPath(id);
    try {
      await this.send({ method: 'DELETE', path, idempotent: true });
      return true;
    } catch (err) {
      if (err instanceof LedgerError && err.code === 'not_found') return false;
      throw err;
    }
  }
  async listWebhookDeliveries(id: string, query: DeliveryQuery = {}): Promise<Delivery[]> {
    const path = webhookPath(id, '/deliveries');
    parseInput(deliveryQuerySchema, query);
    return (await this.send<{ deliveries: Delivery[] }>({ method: 'GET', path, query: { ...query }, idempotent: true })).deliveries;
  }
  async replayWebhook(id: string, input: ReplayInput): Promise<ReplayResult> {
    const path = webhookPath(id, '/replay');
    parseInput(replayInputSchema, input);
    return this.send({ method: 'POST', path, body: input, idempotent: true });
  }
  /** Creates a token for this namespace (admin scope); the answer's `token` is shown only now. */
  async createToken(input: { scope: Scope; name?: string }): Promise<CreatedToken> {
    // Not retried: a lost answer would leave a token nobody saw.
    return this.send({ method: 'POST', path: '/v1/tokens', body: input, idempotent: false });
  }
  /** This namespace's tokens, newest first, without secrets (admin scope). */
  async listTokens(): Promise<TokenInfo[]> {
    return (await this.send<{ tokens: TokenInfo[] }>({ method: 'GET', path: '/v1/tokens', idempotent: true })).tokens;
  }
  /** Revokes one of this namespace's tokens (admin scope); revoking twice is a no-op. */
  async revokeToken(id: string): Promise<TokenInfo> {
    return this.send({ method: 'DELETE', path: `/v1/tokens/${encodeURIComponent(id)}`, idempotent: true });
  }
  async setRetention(rules: RetentionRule[]): Promise<RetentionRules> {
    parseInput(retentionRulesSchema, rules, 'rules');
    return this.send({ method: 'PUT', path: '/v1/retention', body: { rules }, idempotent: true });
  }
  async getRetention(): Promise<RetentionRules> {
    return this.send({ method: 'GET', path: '/v1/retention', idempotent: true });
  }
  async prune(opts: PruneOptions = {}): Promise<PruneResult> {
    parseInput(pruneOptionsSchema, opts ?? {});
    // A lost answer after a prune is safe to repeat: the next chunk is pruned, or nothing.
    return this.send({ method: 'POST', path: '/v1/prune', body: opts ?? {}, idempotent: true });
  }
  async exportRuns(query: ExportQuery = {}): Promise<ExportPage> {
    const q = parseInput(exportQuerySchema, query ?? {});
    const text = await this.send<string>({
      method: 'GET',
      path: '/v1/export',
      query: { ...query, limit: q.limit ?? 100 },
      idempotent: true,
      raw: true,
    });
    const lines = text.split('\n').filter((l) => l !== '');
    const end = lines.length ? (JSON.parse(lines[lines.length - 1]) as { end?: boolean; nextAfter?: string | null }) : {};
    if (!end.end) throw new LedgerError('internal_error', 'the export stream ended before its end line (the server stopped mid-answer)');
    return { runs: lines.slice(1, -1).map((l) => JSON.parse(l)), nextAfter: end.nextAfter ?? null };
  }
  async restoreRuns(runs: unknown[]): Promise<RestoreResult> {
    if (!Array.isArray(runs))
      throw new ValidationError('runs must be an array of exported runs', [{ field: 'runs', message: 'not an array' }]);
    // Idempotent: a run restored twice is a duplicate the second time.
    return this.send({ method: 'POST', path: '/v1/restore', body: { runs }, idempotent: true });
  }
  async tail(runId: string, opts: TailOptions): Promise<TailResult> {
    return tailRun(this.transport, this.namespace, parseRunId(runId), opts);
  }
  async close(): Promise<void> {
    // Idle keep-alive connections do not hold the process open; close() releases them now.
    await this.transport.agent?.close();
  }
}

const webhookPath = (id: string, rest = '') => `/v1/webhooks/${parseWebhookId(id)}${rest}`;

/**
 * A ledger over HTTP, with the same interface as `openLedger()`.
 * @example
 * const ledger = createClient({ baseUrl: 'http://127.0.0.1:7070', token: process.env.RUNLEDGER_TOKEN });
 * await ledger.track({ job: 'nightly-export', subject: 'acme' }, async (run) => {
 *   await run.event('progress', { done: 1, of: 3 });
 * });
 */
export function createClient(opts: ClientOptions): RunledgerClient {
  let url: URL;
  try {
    url = new URL(opts.baseUrl);
  } catch {
    throw new ValidationError(`baseUrl must be an http(s) URL such as http://127.0.0.1:7070; got ${JSON.stringify(opts.baseUrl)}`, [
      { field: 'baseUrl', message: 'not a URL' },
    ]);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ValidationError(`baseUrl must use http or https; got ${JSON.stringify(opts.baseUrl)}`, [
      { field: 'baseUrl', message: 'not http(s)' },
    ]);
  const baseUrl = url.toString().replace(/\/+$/, '');
  const transport: Transport = {
    baseUrl,
    origin: url.origin,
    pathPrefix: baseUrl.slice(url.origin.length),
    token: opts.token,
    fetch: opts.fetch ?? globalThis.fetch.bind(globalThis),
    agent: opts.fetch ? undefined : newAgent(opts.timeoutMs ?? 60_000),
    retries: opts.retries ?? 3,
    timeoutMs: opts.timeoutMs ?? 60_000,
  };
  return new HttpLedger(transport, parseInput(namespaceSchema, opts.namespace ?? 'default', 'namespace'));
}
