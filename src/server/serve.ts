/**
 * startServer(): buildServer + listen + the reaper loop + the data-dir lock's server URL.
 * Refuses to listen beyond loopback without tokens. close() stops the reaper, ends live
 * streams and lets in-flight requests finish; it does not close the ledger.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { FastifyInstance } from 'fastify';

import { ConfigurationError } from '../core/errors.js';
import type { OpenedLedger } from '../ledger/open.js';
import { buildServer, type BuildServerOptions } from './app.js';
import { defaultWebRoot } from './static.js';
import { WebhookDispatcher, type WebhookDispatcherOptions } from './webhooks.js';

export interface StartServerOptions {
  ledger: OpenedLedger;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 7070; 0 picks a free port. */
  port?: number;
  /** `auto` (default): off on loopback, required elsewhere. */
  auth?: 'auto' | 'required' | 'off';
  /** Reaper period in seconds (default 5); 0 disables the reaper in this server. */
  reapIntervalS?: number;
  /** pino options; default: JSON logs at info to stdout. */
  logger?: boolean | object;
  /** Log each request (two JSON lines per request; default true). */
  logRequests?: boolean;
  bodyLimit?: number;
  /** Longest time a client may take to send a request, body included (default 60 000 ms; see buildServer). */
  requestTimeoutMs?: number;
  /** Per-token rate limit; default 100/s (bursts of 200) with auth, none without (see buildServer). */
  rateLimit?: BuildServerOptions['rateLimit'];
  /** Dashboard folder; default `<package root>/dist/web` when built. `false` serves none. */
  webRoot?: string | false;
  stream?: BuildServerOptions['stream'];
  /** The webhook dispatcher's settings, or false to deliver none from this server (others on the database still do). */
  webhooks?: WebhookDispatcherOptions | false;
  /**
   * The pruner (README "Retention"), run at the reaper's interval in its own pass: chunks of
   * `chunk` runs (default 500), `sleepMs` between chunks (default 50), at most `maxRunsPerPass`
   * (default 10 000) per pass. One chunk at a time across all servers (advisory lock).
   * `false` prunes nothing from this server (reapIntervalS 0 also stops it).
   */
  prune?:
    | {
        chunk?: number;
        sleepMs?: number;
        maxRunsPerPass?: number;
        /** The change log keeps this many days (default 30, or RUNLEDGER_CHANGES_KEEP_DAYS), beyond what webhooks still need. */
        changesKeepDays?: number;
        /** Delivered and failed webhook deliveries are kept this many days (default 30, or RUNLEDGER_DELIVERIES_KEEP_DAYS). */
        deliveriesKeepDays?: number;
      }
    | false;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * Starts the HTTP service.
 * @example
 * const ledger = await openLedger();
 * const server = await startServer({ ledger, port: 0 });
 * const client = createClient({ baseUrl: server.url });
 */
export async function startServer(opts: StartServerOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 7070;
  const mode = opts.auth ?? 'auto';
  if (!['auto', 'required', 'off'].includes(mode))
    throw new ConfigurationError(`auth must be auto, required or off; got ${JSON.stringify(mode)}`);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigurationError(`port must be 0–65535; got ${JSON.stringify(port)}`);
  const loopback = isLoopback(host);
  const auth = mode === 'auto' ? (loopback ? 'off' : 'required') : mode;
  if (auth === 'off' && !loopback)
    throw new ConfigurationError(
      `refusing to serve on ${host} without authentication: bind a loopback address (127.0.0.1) or use --auth required with tokens`,
    );
  const reapIntervalS = opts.reapIntervalS ?? 5;
  if (!(reapIntervalS >= 0)) throw new ConfigurationError(`reapIntervalS must be 0 or more; got ${JSON.stringify(opts.reapIntervalS)}`);

  const webRoot = opts.webRoot === false ? undefined : (opts.webRoot ?? defaultWebRoot(PACKAGE_ROOT));
  const app = await buildServer({
    ledger: opts.ledger,
    auth,
    logger: opts.logger ?? true,
    logRequests: opts.logRequests,
    bodyLimit: opts.bodyLimit,
    requestTimeoutMs: opts.requestTimeoutMs,
    rateLimit: opts.rateLimit,
    webRoot,
    stream: opts.stream,
    allowPrivateWebhooks: opts.webhooks ? opts.webhooks.allowPrivateTargets : false,
  });
  await app.listen({ host, port });
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  // A wildcard bind is reached locally through loopback (the URL is what local CLIs use).
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const url = `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${actualPort}`;
  opts.ledger.dataDirLock?.setServerUrl(url);
  app.log.info({ url, auth, reapIntervalS, location: opts.ledger.location, dashboard: Boolean(webRoot) }, 'runledger server listening');

  // The reaper, then the expectation monitor: one pass at a time in this process; across
  // processes their advisory locks decide.
  let reaping: Promise<void> | null = null;
  const reapOnce = () => {
    if (reaping) return;
    reaping = opts.ledger
      .reap()
      .then((result) => {
        app.runledger.metrics.reaped(result);
        if (result.suspected.length || result.timedOut.length)
          app.log.info({ suspected: result.suspected, timedOut: result.timedOut }, 'reaper acted');
      })
      .catch((err) => app.log.warn({ err }, 'reaper pass failed; next pass retries'))
      .then(() => opts.ledger.monitorExpectations())
      .then((result) => {
        if (result?.changes.length) app.log.info({ changes: result.changes }, 'expectation monitor acted');
      })
      .catch((err) => app.log.warn({ err }, 'expectation monitor pass failed; next pass retries'))
      .finally(() => {
        reaping = null;
      });
  };
  // The feed pruner's ages from the environment, checked at start-up (a typo fails loudly).
  const envDays = (name: string): number | undefined => {
    const raw = process.env[name];
    if (raw === undefined || raw.trim() === '') return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > 36500)
      throw new ConfigurationError(`${name} must be a whole number of days from 0 to 36500; got ${JSON.stringify(raw)}`);
    return n;
  };
  envDays('RUNLEDGER_CHANGES_KEEP_DAYS');
  envDays('RUNLEDGER_DELIVERIES_KEEP_DAYS');
  // The pruner: its own pass, so that a long one never delays the reaper.
  let pruning: Promise<void> | null = null;
  const pruneOpts = opts.prune;
  const stopPruning = new AbortController();
  const pruneOnce = () => {
    if (pruning || pruneOpts === false) return;
    pruning = opts.ledger
      .pruneAll({ chunk: pruneOpts?.chunk, sleepMs: pruneOpts?.sleepMs, maxRuns: pruneOpts?.maxRunsPerPass, signal: stopPruning.signal })
      .then((result) => {
        if (result.pruned) app.log.info({ pruned: result.pruned }, 'pruner acted');
      })
      .then(() =>
        opts.ledger.pruneFeedAll({
          changesKeepDays: pruneOpts?.changesKeepDays ?? envDays('RUNLEDGER_CHANGES_KEEP_DAYS'),
          deliveriesKeepDays: pruneOpts?.deliveriesKeepDays ?? envDays('RUNLEDGER_DELIVERIES_KEEP_DAYS'),
          sleepMs: pruneOpts?.sleepMs,
          signal: stopPruning.signal,
        }),
      )
      .then((result) => {
        if (result.changes || result.deliveries) app.log.info(result, 'feed pruner acted');
      })
      .catch((err) => app.log.warn({ err }, 'pruner pass failed; next pass retries'))
      .finally(() => {
        pruning = null;
      });
  };
  const timer =
    reapIntervalS > 0
      ? setInterval(() => {
          reapOnce();
          pruneOnce();
        }, reapIntervalS * 1000)
      : undefined;
  timer?.unref();

  const dispatcher =
    opts.webhooks === false
      ? null
      : new WebhookDispatcher(opts.ledger, app.log, (outcome) => app.runledger.metrics.webhookAttempt(outcome), opts.webhooks);
  dispatcher?.start();

  let closing: Promise<void> | null = null;
  return {
    url,
    app,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        stopPruning.abort();
        await dispatcher?.stop();
        await reaping;
        await pruning;
        await app.close();
      })();
      return closing;
    },
  };
}
