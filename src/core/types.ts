/**
 * The run ledger's data model and the `Ledger` interface. The embedded/PostgreSQL
 * library (`openLedger`) and the HTTP client (`createClient`) both implement `Ledger`,
 * so code written against it runs unchanged in process or over HTTP.
 */

import type { ChangePage, ChangesQuery, Watcher, WatchOptions } from './changes.js';
import type { Json, JsonObject } from './json.js';
import type { CreatedWebhook, Delivery, DeliveryQuery, ReplayInput, ReplayResult, Webhook, WebhookInput } from './webhooks.js';

export type { Json, JsonObject };

export const RUN_STATUSES = ['submitted', 'running', 'retrying', 'completed', 'failed', 'cancelled', 'timed_out'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export type TerminalStatus = 'completed' | 'failed' | 'cancelled' | 'timed_out';

export const EVENT_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type EventLevel = (typeof EVENT_LEVELS)[number];

export interface RunError {
  type?: string;
  message: string;
  details?: Json;
  stack?: string;
}

/** One run's canonical record. Timestamps are ISO 8601 strings (UTC). */
export interface Run {
  namespace: string;
  id: string;
  job: string;
  subject: string | null;
  trigger: string | null;
  actor: string | null;
  parentId: string | null;
  status: RunStatus;
  attempt: number;
  externalIds: Record<string, string>;
  params: JsonObject;
  tags: Record<string, string>;
  notes: string | null;
  output: Json | null;
  statistics: JsonObject | null;
  error: RunError | null;
  progress: Json | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  heartbeatAt: string | null;
  leaseS: number | null;
  deadlineAt: string | null;
  /** True while a running run has gone more than one lease without renewal. */
  suspect: boolean;
  /** Increments on every change to the record (not on events or heartbeats). */
  version: number;
  /** Number of events in the run's log (the last seq). */
  lastSeq: number;
  source: string | null;
  sourceId: string | null;
  /** At most one live exclusive run per (namespace, job, subject). */
  exclusive: boolean;
  /** A parent's children by status (getRun only, and only when it has children). */
  children?: ChildrenSummary;
}

export interface ChildrenSummary {
  total: number;
  byStatus: Partial<Record<RunStatus, number>>;
}

export interface StartRunInput {
  /** Client-chosen id (1–128 of letters, digits and `._:@+-`); a UUIDv7 when omitted. */
  id?: string;
  job: string;
  subject?: string;
  trigger?: string;
  actor?: string;
  parentId?: string;
  /** `running` (default) starts the run at once; `submitted` only records it. */
  status?: 'submitted' | 'running';
  externalIds?: Record<string, string>;
  params?: JsonObject;
  tags?: Record<string, string>;
  notes?: string;
  leaseS?: number;
  deadlineAt?: string;
  /**
   * At most one live exclusive run per (job, subject), enforced by the database: another
   * exclusive start while one is live fails with `run_active` naming it.
   */
  exclusive?: boolean;
}

export interface LedgerEvent {
  runId: string;
  seq: number;
  key: string | null;
  type: string;
  level: EventLevel | null;
  at: string;
  recordedAt: string;
  body: Json;
  hash: string;
}

export interface EventInput {
  /** Idempotency key, unique per run: a repeat returns the original seq. */
  key?: string;
  type: string;
  level?: EventLevel;
  /** When it happened (defaults to now). */
  at?: string;
  body?: Json;
}

export interface EventOptions {
  key?: string;
  level?: EventLevel;
  at?: string;
}

export interface AppendResult {
  seq: number;
  key?: string;
  duplicate: boolean;
}

export interface CheckpointInput {
  name: string;
  kind?: string;
  ref?: string;
  metadata: JsonObject;
  data?: Json;
}

export interface Checkpoint {
  runId: string;
  name: string;
  kind: string | null;
  ref: string | null;
  metadata: JsonObject;
  /** Present when read whole (`getCheckpoint`), absent in lists. */
  data?: Json | null;
  contentHash: string;
  seq: number;
  createdAt: string;
}

export interface CheckpointResult {
  checkpoint: Checkpoint;
  /** False when the same content was already stored under that name. */
  created: boolean;
}

export interface SubjectStatus {
  namespace: string;
  job: string;
  subject: string;
  runId: string;
  status: RunStatus;
  trigger: string | null;
  finishedAt: string;
  previousStatus: RunStatus | null;
  statusChangedAt: string;
  /** Health, kept with the verdict: the last completed and the last failed (or timed out) run. */
  lastSuccessAt: string | null;
  lastFailureAt: string | null;
  /** Completed runs since the last failure, and failures since the last success (cancelled runs count as neither). */
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  /** The latest start of any run of the subject. */
  lastStartedAt: string | null;
  /** The first slot of the job's expectation after the last start (null without an expectation). */
  nextDueAt: string | null;
  /** Past its slot plus grace with no run started since. */
  overdue: boolean;
}

export interface SubjectDetail extends SubjectStatus {
  recentRuns: Run[];
}

export interface ListRunsFilter {
  job?: string;
  subject?: string;
  status?: RunStatus | RunStatus[];
  trigger?: string;
  actor?: string;
  parentId?: string;
  /** `key:value` — runs whose external id `key` equals `value`. */
  externalId?: string;
  /** Runs that have no external id under this key. */
  missingExternalId?: string;
  /** `key:value` — runs tagged with it. */
  tag?: string;
  createdAfter?: string;
  createdBefore?: string;
  /** Free-text search: runs whose id, job or subject starts with this text (case-sensitive). */
  q?: string;
  /** Also count the matching runs (all pages): `total`, counted up to {@link TOTAL_CAP}. */
  withTotal?: boolean;
  /** 1–500, default 50. */
  limit?: number;
  cursor?: string;
}

/** The most runs `withTotal` counts; past it, `total` is this and `totalCapped` is true. */
export const TOTAL_CAP = 10_000;

export interface RunPage {
  runs: Run[];
  nextCursor: string | null;
  /** With `withTotal`: how many runs match the filters (cursor aside), at most {@link TOTAL_CAP}. */
  total?: number;
  /** With `withTotal`: true when more than {@link TOTAL_CAP} match (`total` is then the cap). */
  totalCapped?: boolean;
}

export interface ListSubjectsFilter {
  job?: string;
  status?: RunStatus | RunStatus[];
  /** true: only overdue subjects; false: only those that are not. */
  overdue?: boolean;
  /** Subjects whose next slot is before this time (overdue ones included). */
  dueBefore?: string;
  limit?: number;
  cursor?: string;
}

export interface SubjectPage {
  subjects: SubjectStatus[];
  nextCursor: string | null;
}

export interface ListEventsOptions {
  afterSeq?: number;
  /** 1–1000, default 100. */
  limit?: number;
}

export interface EventPage {
  events: LedgerEvent[];
  nextAfterSeq: number | null;
}

export interface CompleteInput {
  output?: Json;
  statistics?: JsonObject;
  /** Replaces the notes; omitted keeps the existing notes. */
  notes?: string;
}

export interface FailInput {
  error: RunError;
  statistics?: JsonObject;
  notes?: string;
}

export interface CancelInput {
  reason?: string;
}

export interface RetryInput {
  error?: RunError;
}

export interface UpdateRunInput {
  /** Merged into the tags (last write wins per key). */
  tags?: Record<string, string>;
  notes?: string;
  /** Write-once per key: same value is a no-op, another value is `key_conflict`. */
  externalIds?: Record<string, string>;
  /** Compare-and-set: fails with `version_mismatch` unless the run is at this version. */
  ifVersion?: number;
}

export interface VerifyProblem {
  runId: string;
  seq?: number;
  checkpoint?: string;
  problem: 'seq_gap' | 'hash_mismatch' | 'checkpoint_hash_mismatch' | 'last_seq_mismatch';
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  runsChecked: number;
  eventsChecked: number;
  problems: VerifyProblem[];
}

export interface RunRef {
  namespace: string;
  id: string;
}

export interface ReapResult {
  /** False when another reaper holds the lock; nothing was done. */
  acquired: boolean;
  suspected: RunRef[];
  timedOut: RunRef[];
}

/** A retention rule (README "Retention"): without `job`, the namespace's default. */
export interface RetentionRule {
  /** The job it applies to; absent for the namespace's default (which the job's own rule overrides). */
  job?: string;
  /** Finished runs older than this many days (by finishedAt) may be pruned; 0–36500. */
  keepDays: number;
  /** The newest N finished runs of each subject are kept whatever their age (default 0). */
  keepLastPerSubject?: number;
}

export interface RetentionRules {
  rules: (RetentionRule & { keepLastPerSubject: number; updatedAt: string })[];
}

/** What a pruned run leaves behind: its identity and the final head of its hash chain. */
export interface Tombstone {
  namespace: string;
  id: string;
  job: string;
  subject: string | null;
  status: RunStatus;
  createdAt: string;
  finishedAt: string;
  lastSeq: number;
  lastHash: string;
  prunedAt: string;
}

export interface PruneOptions {
  /** Report what would be pruned (count, and the first `limit` ids); delete nothing. */
  dryRun?: boolean;
  /** Runs per call, one transaction (1–5000, default 500). */
  limit?: number;
  /** Prune only these runs, each only if the rules still allow it (prune --archive's second step). */
  ids?: string[];
}

export interface PruneResult {
  /** Runs pruned by this call (for a dry run: that would be, up to `limit`). */
  runs: { id: string; job: string; subject: string | null; finishedAt: string; lastSeq: number }[];
  pruned: number;
  events: number;
  checkpoints: number;
  /** Dry run only: every run the rules allow pruning now. */
  eligible?: number;
  /** True when more runs may be eligible after this call. */
  more: boolean;
}

/** One run in an export (NDJSON line), with everything needed to restore it exactly. */
export interface ExportedRun {
  run: {
    id: string;
    job: string;
    subject: string | null;
    trigger: string | null;
    actor: string | null;
    parentId: string | null;
    status: RunStatus;
    attempt: number;
    externalIds: Record<string, string>;
    params: JsonObject;
    tags: Record<string, string>;
    notes: string | null;
    output: Json | null;
    statistics: JsonObject | null;
    error: RunError | null;
    progress: Json | null;
    createdAt: string;
    startedAt: string | null;
    finishedAt: string | null;
    heartbeatAt: string | null;
    leaseS: number | null;
    deadlineAt: string | null;
    suspect: boolean;
    version: number;
    lastSeq: number;
    lastHash: string;
    source: string | null;
    sourceId: string | null;
    exclusive: boolean;
  };
  events: Omit<LedgerEvent, 'runId'>[];
  checkpoints: (Omit<Checkpoint, 'runId' | 'data'> & { data: Json | null })[];
}

export interface ExportQuery {
  job?: string;
  /** Runs finished before this time (live runs are never exported with `before`). */
  before?: string;
  /** Only runs the retention rules allow pruning now (what prune --archive writes). */
  prunable?: boolean;
  /** The `nextAfter` of the previous page. */
  after?: string;
  /** Runs per page (1–1000, default 100). */
  limit?: number;
}

export interface ExportPage {
  runs: ExportedRun[];
  nextAfter: string | null;
}

export interface RestoreItemResult {
  index: number;
  id: string | null;
  status: 'restored' | 'duplicate' | 'invalid';
  error?: { code: string; message: string };
}

export interface RestoreResult {
  results: RestoreItemResult[];
  restored: number;
  duplicates: number;
  invalid: number;
}

/** A historical run to import; see the README's import section. */
export interface ImportRecord {
  sourceId: string;
  id?: string;
  job?: string;
  subject?: string;
  trigger?: string;
  actor?: string;
  parentId?: string;
  status?: TerminalStatus;
  createdAt?: string;
  startedAt?: string;
  finishedAt?: string;
  params?: JsonObject;
  tags?: Record<string, string>;
  notes?: string;
  output?: Json;
  statistics?: JsonObject;
  error?: RunError;
  externalIds?: Record<string, string>;
  events?: EventInput[];
}

export interface ImportOptions {
  /** Write nothing; report what would happen. */
  dryRun?: boolean;
  /**
   * `auto` (default): skip records whose startedAt is at or after the first live
   * (not imported) run of the same job and trigger. An ISO time: skip records at or
   * after it. `none`: no cutover.
   */
  cutover?: 'auto' | 'none' | string;
  /** Update subject status from imported runs (default true; freshness rule applies). */
  subjectStatus?: boolean;
}

export type ImportItemStatus = 'inserted' | 'duplicate' | 'skipped_cutover' | 'invalid';

export interface ImportItemResult {
  index: number;
  sourceId: string | null;
  status: ImportItemStatus;
  runId?: string;
  error?: { code: string; message: string };
}

export interface ImportResult {
  results: ImportItemResult[];
  inserted: number;
  duplicates: number;
  skippedCutover: number;
  invalid: number;
}

export interface StatsQuery {
  job?: string;
  from?: string;
  to?: string;
  bucket?: 'minute' | 'hour' | 'day';
}

export interface StatsBucket {
  start: string;
  counts: Partial<Record<RunStatus, number>>;
  durationP50Ms: number | null;
  durationP95Ms: number | null;
}

export interface StatsResult {
  bucket: 'minute' | 'hour' | 'day';
  from: string;
  to: string;
  buckets: StatsBucket[];
  jobs: { job: string; count: number; durationP50Ms: number | null; durationP95Ms: number | null }[];
}

/** PUT /v1/expectations/{job}: exactly one of `every` or `cron`. */
export interface ExpectationInput {
  /** An interval after each start: `90s`, `30m`, `12h`, `7d`. */
  every?: string;
  /** A cron expression (5 fields, or 6 with seconds), evaluated in `timezone`. */
  cron?: string;
  /** IANA time zone of the cron expression (default UTC). */
  timezone?: string;
  /** How long after a slot the subject becomes overdue: `30m`. */
  grace: string;
  /** true (default): each subject of the job on its own; false: the job as a whole. */
  perSubject?: boolean;
}

export interface Expectation {
  namespace: string;
  job: string;
  every: string | null;
  cron: string | null;
  timezone: string;
  grace: string;
  perSubject: boolean;
  createdAt: string;
  updatedAt: string;
  /** perSubject false: the job's own schedule (null otherwise). */
  lastStartedAt: string | null;
  nextDueAt: string | null;
  overdue: boolean;
}

/** A change the expectation monitor appended: a subject (or a job) missed a slot, or ran again. */
export interface ExpectationChange {
  type: 'expectation.missed' | 'expectation.met';
  namespace: string;
  job: string;
  subject: string | null;
  at: string;
  data: {
    job: string;
    subject?: string;
    /** The slot missed (for met: the first slot of the episode). */
    dueAt: string;
    lastRunAt?: string;
    /** More than one slot passed while no monitor ran: this change stands for all of them. */
    missedSlots?: number;
    firstDueAt?: string;
  };
}

export interface MonitorResult {
  /** False when another monitor holds the lock; nothing was done. */
  acquired: boolean;
  changes: ExpectationChange[];
}

export interface TrackOptions extends StartRunInput {
  /** Heartbeat every this many seconds (default leaseS / 3). */
  heartbeatEveryS?: number;
}

/** The run `track()` hands to its function. */
export interface TrackedRun extends StartedRun {
  /** Aborts when the run is cancelled (or finished) elsewhere: stop working on it. */
  readonly signal: AbortSignal;
}

/** A handle on one run: every write names exactly this run. */
export interface RunHandle {
  readonly id: string;
  get(): Promise<Run>;
  start(): Promise<Run>;
  heartbeat(progress?: Json): Promise<Run>;
  event(type: string, body?: Json, opts?: EventOptions): Promise<AppendResult>;
  events(events: EventInput[]): Promise<AppendResult[]>;
  listEvents(opts?: ListEventsOptions): Promise<EventPage>;
  checkpoint(input: CheckpointInput): Promise<CheckpointResult>;
  getCheckpoint(name: string): Promise<Checkpoint>;
  listCheckpoints(): Promise<Checkpoint[]>;
  complete(input?: CompleteInput): Promise<Run>;
  fail(input: FailInput): Promise<Run>;
  cancel(input?: CancelInput): Promise<Run>;
  retry(input?: RetryInput): Promise<Run>;
  setExternalIds(ids: Record<string, string>): Promise<Run>;
  update(input: UpdateRunInput): Promise<Run>;
  verify(): Promise<VerifyResult>;
}

export interface StartedRun extends RunHandle {
  /** The run as stored right after the call. */
  readonly run: Run;
  /** False when an identical run with this id already existed (idempotent create). */
  readonly created: boolean;
}

/** The library surface, implemented in process (`openLedger`) and over HTTP (`createClient`). */
export interface Ledger {
  readonly namespace: string;
  /** The same ledger, addressing another namespace. */
  inNamespace(namespace: string): Ledger;
  startRun(input: StartRunInput): Promise<StartedRun>;
  getRun(id: string): Promise<Run>;
  listRuns(filter?: ListRunsFilter): Promise<RunPage>;
  run(id: string): RunHandle;
  track<T>(opts: TrackOptions, fn: (run: TrackedRun) => Promise<T> | T): Promise<T>;
  listSubjects(filter?: ListSubjectsFilter): Promise<SubjectPage>;
  getSubject(job: string, subject: string): Promise<SubjectDetail>;
  importRuns(source: string, records: unknown[], opts?: ImportOptions): Promise<ImportResult>;
  verify(runId?: string): Promise<VerifyResult>;
  reap(): Promise<ReapResult>;
  /** Sets (creates or replaces) the expectation of `job`. Needs admin scope over HTTP. */
  setExpectation(job: string, input: ExpectationInput): Promise<Expectation>;
  listExpectations(): Promise<Expectation[]>;
  /** Removes the expectation of `job`; false when there was none. */
  deleteExpectation(job: string): Promise<boolean>;
  stats(query?: StatsQuery): Promise<StatsResult>;
  /** The namespace's change log after a cursor (README "Change feed"). */
  changes(query?: ChangesQuery): Promise<ChangePage>;
  /** Follows the change log from `after`; every change once, in feed order. */
  watch(opts: WatchOptions): Watcher;
  /** Subscribes a URL to change types; the answer holds the signing secret, shown only here. Admin scope over HTTP. */
  createWebhook(input: WebhookInput): Promise<CreatedWebhook>;
  listWebhooks(): Promise<Webhook[]>;
  getWebhook(id: string): Promise<Webhook>;
  /** Removes a webhook with its delivery log; false when there was none. Admin scope over HTTP. */
  deleteWebhook(id: string): Promise<boolean>;
  /** A webhook's deliveries, newest first, each with every attempt. */
  listWebhookDeliveries(id: string, query?: DeliveryQuery): Promise<Delivery[]>;
  /** Delivers again the matching changes after a cursor (and enables a disabled webhook). Admin scope over HTTP. */
  replayWebhook(id: string, input: ReplayInput): Promise<ReplayResult>;
  /** Replaces the namespace's retention rules (README "Retention"). Admin scope over HTTP. */
  setRetention(rules: RetentionRule[]): Promise<RetentionRules>;
  getRetention(): Promise<RetentionRules>;
  /** One chunk of pruning (one transaction) under the rules; call until `more` is false. Admin scope over HTTP. */
  prune(opts?: PruneOptions): Promise<PruneResult>;
  /** A page of whole runs (run, events, checkpoints), oldest finished first, for export and archive. */
  exportRuns(query?: ExportQuery): Promise<ExportPage>;
  /** Restores exported runs exactly (same ids, seqs, hashes); over a tombstone only when the chain ends in its hash. */
  restoreRuns(runs: unknown[]): Promise<RestoreResult>;
  close(): Promise<void>;
}
