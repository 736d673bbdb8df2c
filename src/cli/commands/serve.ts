import { type Command, Option } from 'commander';

import { LedgerError } from '../../core/errors.js';
import { RETRY_SCHEDULE_S } from '../../core/webhooks.js';
import { DEFAULT_MAX_FUTURE_SKEW_S } from '../../ledger/context.js';
import { act, directOptions, examples } from '../context.js';
import { println } from '../output.js';
import { intOption, secondsListOption } from '../parse.js';
import { openDirect } from '../target.js';

/** How long a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_LIMIT_S = 30;

interface ServeOptions {
  host: string;
  port: number;
  auth: 'auto' | 'required' | 'off';
  reapIntervalS: number;
  logLevel: string;
  rateLimit?: number;
  requestTimeoutS: number;
  maxFutureSkewS: number;
  minFreeMb: number;
  webhooks: boolean;
  prune: boolean;
  logRequests?: boolean;
  allowPrivateWebhooks?: boolean;
  webhookRetrySchedule?: number[];
}

export function register(program: Command): void {
  const cmd = program
    .command('serve')
    .summary('run the HTTP API, the dashboard and the reaper')
    .description('run the HTTP API and the dashboard; the reaper runs inside; SIGTERM or SIGINT shuts down gracefully')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port (0 picks a free one)', intOption('--port', 0, 65535), 7070)
    .addOption(
      new Option('--auth <mode>', 'auto: off on loopback, tokens required elsewhere').choices(['auto', 'required', 'off']).default('auto'),
    )
    .option('--reap-interval-s <seconds>', 'reaper period; 0 disables it in this server', intOption('--reap-interval-s', 0, 86_400), 5)
    .option(
      '--rate-limit <perSecond>',
      'requests per second per token, bursts of 2× (0: none); default 100 with tokens, none without',
      intOption('--rate-limit', 0, 1_000_000),
    )
    .option(
      '--request-timeout-s <seconds>',
      'a request must arrive whole, body included, within this time or is answered 408 (0: no limit)',
      intOption('--request-timeout-s', 0, 86_400),
      60,
    )
    .option(
      '--max-future-skew-s <seconds>',
      'how far ahead of this server’s clock a caller’s time (event at, imported startedAt/finishedAt) may be',
      intOption('--max-future-skew-s', 0, 31_536_000),
      DEFAULT_MAX_FUTURE_SKEW_S,
    )
    .option('--log-requests', 'log every request and its response (two JSON lines each; off by default)')
    .option('--no-webhooks', 'deliver no webhooks from this server (other servers on the same database still do)')
    .option(
      '--no-prune',
      'prune nothing from this server (by default it prunes what the retention rules allow, at the reaper’s interval; use this while `runledger prune --archive` runs)',
    )
    .option(
      '--allow-private-webhooks',
      'let webhooks reach loopback, private and link-local addresses (refused by default: a URL must not reach the network behind the server)',
    )
    .option(
      '--webhook-retry-schedule <seconds,…>',
      `seconds to wait after each failed delivery attempt; after the last, the delivery is failed and kept (default ${RETRY_SCHEDULE_S.join(',')})`,
      secondsListOption('--webhook-retry-schedule', 7 * 86_400),
    )
    .option(
      '--min-free-mb <MiB>',
      'embedded: refuse writes (507 storage_full) while the data directory’s disk has less free',
      intOption('--min-free-mb', 0, 1_048_576),
      64,
    )
    .addOption(
      new Option('--log-level <level>', 'log level (JSON logs on stdout)')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('info'),
    )
    .action(
      act(async (o: ServeOptions, c: Command) => {
        const target = directOptions(c, 'serve');
        let ledger;
        try {
          ledger = await openDirect({ ...target, poolSize: 10, maxFutureSkewS: o.maxFutureSkewS, minFreeBytes: o.minFreeMb * 1024 * 1024 });
        } catch (err) {
          const locked = err instanceof LedgerError && err.code === 'data_dir_locked' ? (err.cause as { serverUrl?: string }) : undefined;
          if (locked?.serverUrl) {
            throw new LedgerError('data_dir_locked', `a runledger server at ${locked.serverUrl} already serves this data directory`, {
              cause: err,
            });
          }
          throw err;
        }
        let server;
        try {
          // Loaded on demand: the other commands start faster without the HTTP stack.
          const { startServer } = await import('../../server/serve.js');
          server = await startServer({
            ledger,
            host: o.host,
            port: o.port,
            auth: o.auth,
            reapIntervalS: o.reapIntervalS,
            requestTimeoutMs: o.requestTimeoutS * 1000,
            logger: { level: o.logLevel },
            logRequests: o.logRequests ?? false,
            ...(o.prune ? {} : { prune: false }),
            webhooks: o.webhooks
              ? {
                  allowPrivateTargets: o.allowPrivateWebhooks ?? false,
                  ...(o.webhookRetrySchedule ? { retryScheduleS: o.webhookRetrySchedule } : {}),
                }
              : false,
            ...(o.rateLimit !== undefined ? { rateLimit: o.rateLimit === 0 ? false : { perSecond: o.rateLimit } } : {}),
          });
        } catch (err) {
          await ledger.close();
          throw err;
        }
        println(`runledger listening on ${server.url} (${ledger.location}) — dashboard: ${server.url}/`);
        // Step 1: wait for a signal. Step 2: stop accepting, let in-flight requests finish. Step 3: close the store.
        const signal = await new Promise<NodeJS.Signals>((resolve) => {
          process.once('SIGINT', () => resolve('SIGINT'));
          process.once('SIGTERM', () => resolve('SIGTERM'));
        });
        const force = () => process.exit(1);
        process.once('SIGINT', force);
        process.once('SIGTERM', force);
        process.stderr.write(`runledger: ${signal}: shutting down\n`);
        // A request or the store that never finishes (a wedged embedded store) must not keep the process.
        setTimeout(() => {
          process.stderr.write(`runledger: not stopped within ${SHUTDOWN_LIMIT_S} s; exiting\n`);
          process.exit(1);
        }, SHUTDOWN_LIMIT_S * 1000).unref();
        await server.close();
        await ledger.close();
        process.stderr.write('runledger: stopped\n');
      }),
    );
  examples(cmd, [
    'runledger serve                                         # embedded, http://127.0.0.1:7070',
    'runledger serve --database-url postgres://app@db:5432/runledger --host 0.0.0.0 --auth required',
    'runledger serve --port 0 --reap-interval-s 1           # a free port, printed on start',
    'runledger serve --allow-private-webhooks               # webhooks to a receiver on this machine or network',
    '# while it runs, commands on the same --data-dir go through it:',
    'runledger runs ls',
  ]);
}
