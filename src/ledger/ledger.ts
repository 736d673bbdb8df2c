/** SqlLedger: the `Ledger` interface over a Database (PGlite or PostgreSQL). */
import { EventEmitter } from 'node:events';

import type { ChangePage, ChangesQuery, Watcher, WatchOptions } from '../core/changes.js';
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
  MonitorResult,
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
  completeSchema,
  failSchema,
  namespaceSchema,
  parseInput,
  parseVerifyTarget,
  retrySchema,
} from '../core/validation.js';
import type { CreatedWebhook, Delivery, DeliveryQuery, ReplayInput, ReplayResult, Webhook, WebhookInput } from '../core/webhooks.js';
import type { Database } from '../store/database.js';
import { feedLag, listChanges, watchChanges } from './changes.js';
import { getCheckpoint, listCheckpoints, writeCheckpoint } from './checkpoints.js';
import type { WriteCoalescer } from './coalesce.js';
import type { ChangeNotice, LedgerContext } from './context.js';
import { createRun } from './create.js';
import { appendEvents } from './events.js';
import { deleteExpectation, listExpectations, monitorExpectations, setExpectation } from './expectations.js';
import { type FeedPruneOptions, type FeedPruneResult, pruneFeed } from './feed-retention.js';
import { heartbeat } from './heartbeat.js';
import { importRuns } from './import.js';
import { getRun, getRunRow, getSubject, listEvents, listRuns, listSubjects, parseRunId } from './queries.js';
import { reap } from './reaper.js';
import {
  type ExportLines,
  exportLines,
  exportRuns,
  exportStream,
  getRetention,
  prune,
  restoreRuns,
  retentionNamespaces,
  setRetention,
} from './retention.js';
import { toRun } from './rows.js';
import { stats } from './stats.js';
import { transition } from './transition.js';
import { updateRun } from './update.js';
import { verify } from './verify.js';
import { createWebhook, deleteWebhook, getWebhook, listDeliveries, listWebhooks, replayWebhook } from './webhooks.js';

export interface SqlLedgerShared {
  db: Database;
  changes: EventEmitter<{ change: [ChangeNotice] }>;
  onClose: (() => Promise<void> | void)[];
  closed: boolean;
  /** The ledger's clock (openLedger's `clock`; tests and simulations drive it). */
  clock?: () => Date;
  /** openLedger's `maxFutureSkewS`, in ms. */
  maxFutureMs?: number;
  /** Group commit of hot writes (coalesce.ts); undefined when turned off. */
  writes?: WriteCoalescer;
}

class SqlRunHandle implements RunHandle {
  constructor(
    private readonly ctx: LedgerContext,
    readonly id: string,
  ) {}

  private toRun = (row: Parameters<typeof toRun>[0]) => toRun(row, this.ctx.now().getTime());

  async get(): Promise<Run> {
    return this.toRun(await getRunRow(this.ctx, this.id));
  }
  async start(): Promise<Run> {
    return this.toRun((await transition(this.ctx, this.id, 'start', {}))!);
  }
  async heartbeat(progress?: Json): Promise<Run> {
    return this.toRun(await heartbeat(this.ctx, this.id, progress));
  }
  async event(type: string, body?: Json, opts: EventOptions = {}): Promise<AppendResult> {
    const [result] = await appendEvents(this.ctx, this.id, [{ type, ...(body !== undefined ? { body } : {}), ...opts }]);
    return result;
  }
  events(events: EventInput[]): Promise<AppendResult[]> {
    return appendEvents(this.ctx, this.id, events);
  }
  listEvents(opts?: ListEventsOptions): Promise<EventPage> {
    return listEvents(this.ctx, this.id, opts);
  }
  checkpoint(input: CheckpointInput): Promise<CheckpointResult> {
    return writeCheckpoint(this.ctx, this.id, input);
  }
  getCheckpoint(name: string): Promise<Checkpoint> {
    return getCheckpoint(this.ctx, this.id, name);
  }
  listCheckpoints(): Promise<Checkpoint[]> {
    return listCheckpoints(this.ctx, this.id);
  }
  async complete(input: CompleteInput = {}): Promise<Run> {
    return this.toRun((await transition(this.ctx, this.id, 'complete', parseInput(completeSchema, input)))!);
  }
  async fail(input: FailInput): Promise<Run> {
    return this.toRun((await transition(this.ctx, this.id, 'fail', parseInput(failSchema, input)))!);
  }
  async cancel(input: CancelInput = {}): Promise<Run> {
    const { reason } = parseInput(cancelSchema, input);
    const error = { type: 'cancelled', message: reason ?? 'cancelled' };
    return this.toRun((await transition(this.ctx, this.id, 'cancel', { error, ...(reason !== undefined ? { reason } : {}) }))!);
  }
  async retry(input: RetryInput = {}): Promise<Run> {
    return this.toRun((await transition(this.ctx, this.id, 'retry', parseInput(retrySchema, input)))!);
  }
  async setExternalIds(ids: Record<string, string>): Promise<Run> {
    return this.update({ externalIds: ids });
  }
  async update(input: UpdateRunInput): Promise<Run> {
    return this.toRun(await updateRun(this.ctx, this.id, input));
  }
  verify(): Promise<VerifyResult> {
    return verify(this.ctx, this.id);
  }
}

class SqlStartedRun extends SqlRunHandle implements StartedRun {
  constructor(
    ctx: LedgerContext,
    readonly run: Run,
    readonly created: boolean,
  ) {
    super(ctx, run.id);
  }
}

export class SqlLedger implements Ledger {
  private readonly ctx: LedgerContext;

  constructor(
    private readonly shared: SqlLedgerShared,
    readonly namespace = 'default',
  ) {
    this.ctx = {
      db: shared.db,
      namespace,
      now: shared.clock ?? (() => new Date()),
      changes: shared.changes,
      maxFutureMs: shared.maxFutureMs,
      writes: shared.writes,
    };
  }

  /** The underlying database (for the server's health checks and tools). */
  get database(): Database {
    return this.shared.db;
  }

  /** The ledger's clock (the system's unless openLedger was given one). */
  now(): Date {
    return this.ctx.now();
  }

  /** In-process notices of committed writes (the server's live tail uses them). */
  get notices(): EventEmitter<{ change: [ChangeNotice] }> {
    return this.shared.changes;
  }

  /**
   * The namespace's change log after a cursor, oldest first (README "Change feed").
   * @example
   * let after: string | undefined;
   * const { changes, nextAfter } = await ledger.changes({ after, types: ['run.finished'] });
   */
  changes(query?: ChangesQuery): Promise<ChangePage> {
    return listChanges(this.ctx, query);
  }

  /**
   * Follows the change log: `onChange` sees every change after `after`, once each, in feed
   * order. Wakes at once on this process's writes, and polls every `pollMs` (default 1000)
   * for other processes' writes.
   * @example
   * const w = ledger.watch({ after: 'now', types: ['run.finished'], onChange: (c) => console.log(c.data) });
   * await w.stop();
   */
  watch(opts: WatchOptions & { pollMs?: number }): Watcher {
    const wait = (ms: number, signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.shared.changes.off('change', onNotice);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const onNotice = (n: ChangeNotice) => n.feed && n.namespace === this.namespace && done();
        const timer = setTimeout(done, ms);
        this.shared.changes.on('change', onNotice);
        signal.addEventListener('abort', done, { once: true });
      });
    return watchChanges((q) => this.changes(q), opts, wait, opts.pollMs);
  }

  /** Seconds the change feed is held back by the oldest open transaction (0: not held back). */
  feedLag(): Promise<number> {
    return feedLag(this.ctx);
  }

  inNamespace(namespace: string): SqlLedger {
    return new SqlLedger(this.shared, parseInput(namespaceSchema, namespace, 'namespace'));
  }

  async startRun(input: StartRunInput): Promise<StartedRun> {
    const { row, created } = await createRun(this.ctx, input);
    return new SqlStartedRun(this.ctx, toRun(row), created);
  }
  async getRun(id: string): Promise<Run> {
    return getRun(this.ctx, parseRunId(id));
  }
  listRuns(filter?: ListRunsFilter): Promise<RunPage> {
    return listRuns(this.ctx, filter);
  }
  run(id: string): RunHandle {
    return new SqlRunHandle(this.ctx, parseRunId(id));
  }
  track<T>(opts: TrackOptions, fn: (run: TrackedRun) => Promise<T> | T): Promise<T> {
    return trackRun(this, opts, fn);
  }
  listSubjects(filter?: ListSubjectsFilter): Promise<SubjectPage> {
    return listSubjects(this.ctx, filter);
  }
  getSubject(job: string, subject: string): Promise<SubjectDetail> {
    return getSubject(this.ctx, job, subject);
  }
  importRuns(source: string, records: unknown[], opts?: ImportOptions): Promise<ImportResult> {
    return importRuns(this.ctx, source, records, opts);
  }
  // async: a bad argument must reject the promise, never throw before one is returned.
  async verify(runId?: string): Promise<VerifyResult> {
    return verify(this.ctx, parseVerifyTarget(runId));
  }
  /** Acts on every namespace: leases are a property of the store, not of a tenant. */
  reap(): Promise<ReapResult> {
    return reap(this.ctx);
  }
  setExpectation(job: string, input: ExpectationInput): Promise<Expectation> {
    return setExpectation(this.ctx, job, input);
  }
  listExpectations(): Promise<Expectation[]> {
    return listExpectations(this.ctx);
  }
  deleteExpectation(job: string): Promise<boolean> {
    return deleteExpectation(this.ctx, job);
  }
  /**
   * One pass of the expectation monitor over every namespace (the server runs it with the
   * reaper): overdue subjects get `expectation.missed`, those that ran again `expectation.met`.
   */
  monitorExpectations(): Promise<MonitorResult> {
    return monitorExpectations(this.ctx);
  }
  stats(query?: StatsQuery): Promise<StatsResult> {
    return stats(this.ctx, query);
  }
  /**
   * Subscribes a URL to change types (README "Webhooks"): a server delivers them, signed
   * per Standard Webhooks with the returned secret (shown only here).
   * @example
   * const hook = await ledger.createWebhook({ url: 'https://hooks.example.com/runledger', types: ['run.finished'] });
   */
  createWebhook(input: WebhookInput): Promise<CreatedWebhook> {
    return createWebhook(this.ctx, input);
  }
  listWebhooks(): Promise<Webhook[]> {
    return listWebhooks(this.ctx);
  }
  async getWebhook(id: string): Promise<Webhook> {
    return getWebhook(this.ctx, id);
  }
  async deleteWebhook(id: string): Promise<boolean> {
    return deleteWebhook(this.ctx, id);
  }
  async listWebhookDeliveries(id: string, query?: DeliveryQuery): Promise<Delivery[]> {
    return listDeliveries(this.ctx, id, query);
  }
  async replayWebhook(id: string, input: ReplayInput): Promise<ReplayResult> {
    return replayWebhook(this.ctx, id, input);
  }
  /**
   * Replaces the namespace's retention rules (README "Retention"); a rule without `job` is the
   * default, a job's own rule wins over it.
   * @example
   * await ledger.setRetention([{ keepDays: 90 }, { job: 'compliance-check', keepDays: 400, keepLastPerSubject: 10 }]);
   */
  setRetention(rules: RetentionRule[]): Promise<RetentionRules> {
    return setRetention(this.ctx, rules);
  }
  getRetention(): Promise<RetentionRules> {
    return getRetention(this.ctx);
  }
  /**
   * One chunk (one short transaction) of pruning under the namespace's rules; call it until
   * `more` is false. Every pruned run leaves a tombstone.
   */
  prune(opts?: PruneOptions): Promise<PruneResult> {
    return prune(this.ctx, opts);
  }
  /**
   * The server's pruner: every namespace with rules, chunk by chunk, until nothing is left or
   * `maxRuns` are pruned, sleeping `sleepMs` between chunks (a bounded rate). Another process
   * pruning a chunk (the advisory lock is taken) ends the pass.
   */
  async pruneAll(opts: { chunk?: number; sleepMs?: number; maxRuns?: number; signal?: AbortSignal } = {}): Promise<{ pruned: number }> {
    let pruned = 0;
    const max = opts.maxRuns ?? 10_000;
    for (const ns of await retentionNamespaces(this.ctx)) {
      const ctx = { ...this.ctx, namespace: ns };
      while (pruned < max) {
        if (this.shared.closed || opts.signal?.aborted) return { pruned };
        const r = await prune(ctx, { limit: Math.min(opts.chunk ?? 500, max - pruned) }, { tryLock: true });
        pruned += r.pruned;
        if (!r.more) break;
        if (r.pruned === 0) return { pruned };
        await new Promise((resolve) => setTimeout(resolve, opts.sleepMs ?? 50));
      }
    }
    return { pruned };
  }
  /**
   * One chunk of pruning of the change log and finished webhook deliveries in this namespace
   * (changes older than changesKeepDays that every enabled webhook has read past; deliveries
   * finished more than deliveriesKeepDays ago; both 30 by default). Call it until `more` is false.
   */
  pruneFeed(opts?: FeedPruneOptions): Promise<FeedPruneResult> {
    return pruneFeed(this.ctx, opts);
  }
  /** The server's feed pruner: pruneFeed in every namespace with changes or webhooks, up to `maxRows` rows a pass. */
  async pruneFeedAll(
    opts: FeedPruneOptions & { maxRows?: number; sleepMs?: number; signal?: AbortSignal } = {},
  ): Promise<{ changes: number; deliveries: number }> {
    const total = { changes: 0, deliveries: 0 };
    const max = opts.maxRows ?? 100_000;
    const { rows } = await this.ctx.db.query<{ namespace: string }>(
      `with recursive ns(namespace) as (
         select (select min(namespace) from changes)
         union all
         select (select min(c.namespace) from changes c where c.namespace > ns.namespace) from ns where ns.namespace is not null)
       select namespace from ns where namespace is not null
       union select namespace from webhooks order by 1`,
    );
    for (const { namespace } of rows) {
      const ctx = { ...this.ctx, namespace };
      while (total.changes + total.deliveries < max) {
        if (this.shared.closed || opts.signal?.aborted) return total;
        const r = await pruneFeed(ctx, opts);
        total.changes += r.changes;
        total.deliveries += r.deliveries;
        if (!r.more) break;
        if (!r.changes && !r.deliveries) return total; // another process holds the lock
        await new Promise((resolve) => setTimeout(resolve, opts.sleepMs ?? 50));
      }
    }
    return total;
  }
  /** A page of whole runs (run, events with seq and hash, checkpoints) for export. */
  exportRuns(query?: ExportQuery): Promise<ExportPage> {
    return exportRuns(this.ctx, query);
  }
  /** exportRuns as JSON text, one line per run (what GET /v1/export streams and the CLI writes). */
  exportLines(query?: ExportQuery): Promise<ExportLines> {
    return exportLines(this.ctx, query);
  }
  /** The whole export of `query` as NDJSON bytes (one COPY on PostgreSQL); `count` is filled in as lines go by. */
  exportStream(query?: ExportQuery, count?: { runs: number; events: number }, opts?: { partEvents?: number }): AsyncGenerator<Buffer> {
    return exportStream(this.ctx, query, count, opts);
  }
  /** Restores exported runs exactly (README "Export"): same ids, seqs and hashes. */
  restoreRuns(runs: unknown[]): Promise<RestoreResult> {
    return restoreRuns(this.ctx, runs);
  }
  async close(): Promise<void> {
    if (this.shared.closed) return;
    this.shared.closed = true;
    await this.shared.db.close();
    for (const fn of this.shared.onClose) await fn();
  }
}
