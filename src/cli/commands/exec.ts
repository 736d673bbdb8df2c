import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';

import type { Command } from 'commander';

import { LedgerError } from '../../core/errors.js';
import type { JsonObject, RunError, RunStatus, StartedRun } from '../../core/types.js';
import { act, examples, withTarget } from '../context.js';
import { CliExit, EXIT_FAILURE, EXIT_OK, UsageError } from '../errors.js';
import { LogShipper, type Stream } from '../log-shipper.js';
import { compact, intOption, keyValueOption } from '../parse.js';
import type { Target } from '../target.js';

interface ExecOptions {
  job: string;
  subject?: string;
  trigger?: string;
  actor?: string;
  parent?: string;
  id?: string;
  leaseS: number;
  cancelGraceS: number;
  notes?: string;
  param?: Record<string, string>;
  tag?: Record<string, string>;
  externalId?: Record<string, string>;
  quiet?: boolean;
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type Forwarded = (typeof FORWARDED)[number];

type Outcome =
  { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null } | { kind: 'spawn_failed'; error: NodeJS.ErrnoException };

type Say = (message: string) => void;

const signalExit = (signal: NodeJS.Signals) => 128 + (constants.signals[signal] ?? 0);

/** Retries a final write a few times: losing the completion would leave the run running. */
async function persist<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof LedgerError || attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
    }
  }
}

/** A run that already exists (exec --id repeated): never run the command twice. */
function alreadyExists(run: StartedRun, say: (m: string) => void): number {
  const status: RunStatus = run.run.status;
  if (status === 'completed') {
    say(`run ${run.id} already completed; not running the command again`);
    return EXIT_OK;
  }
  if (status === 'failed' || status === 'cancelled' || status === 'timed_out') {
    throw new CliExit(EXIT_FAILURE, `run ${run.id} already ${status}; use another --id to run the command again`);
  }
  throw new CliExit(
    EXIT_FAILURE,
    `run ${run.id} is already ${status} (started ${run.run.startedAt ?? run.run.createdAt}); not running it twice`,
  );
}

/** What the steps of one exec learn as it goes. */
interface ExecState {
  /** The command has exited; we are only recording it. */
  settled: boolean;
  /** The first of our signals forwarded to the command. */
  cancelledBy?: Forwarded;
  /** The run's status when it was finished by someone else (the dashboard, `runledger cancel`). */
  finishedElsewhere?: RunStatus;
}

/** Step 1: the child, with our signals forwarded to it; returns it and the function that stops forwarding. */
function spawnForwarding(command: string[], runId: string, state: ExecState) {
  const child = spawn(command[0], command.slice(1), {
    stdio: ['inherit', 'pipe', 'pipe'],
    env: { ...process.env, RUNLEDGER_RUN_ID: runId },
  });
  const onSignal = (signal: Forwarded) => {
    if (state.settled) return;
    state.cancelledBy ??= signal;
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const handlers = FORWARDED.map((s) => [s, () => onSignal(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return { child, unforward: () => handlers.forEach(([s, h]) => process.off(s, h)) };
}

/**
 * Step 2a: once the run is seen finished (an event or heartbeat refused), reads why; cancelled
 * elsewhere (the dashboard, `runledger cancel`) stops the command: SIGTERM, SIGKILL after the grace.
 */
function onFinishedElsewhere(ledger: Target, runId: string, child: ChildProcess, o: ExecOptions, state: ExecState, say: Say) {
  let checked = false;
  return () => {
    if (checked) return;
    checked = true;
    ledger
      .getRun(runId)
      .then((r) => {
        state.finishedElsewhere = r.status;
        if (r.status !== 'cancelled' || state.settled) return;
        say(`run ${runId} was cancelled elsewhere; stopping the command (SIGTERM, SIGKILL after ${o.cancelGraceS}s)`);
        child.kill('SIGTERM');
        // A command that ignores SIGTERM is killed once the grace has passed.
        const kill = setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) {
            say(`the command did not stop within ${o.cancelGraceS}s; sending SIGKILL`);
            child.kill('SIGKILL');
          }
        }, o.cancelGraceS * 1000);
        child.once('exit', () => clearTimeout(kill));
      })
      .catch(() => {});
  };
}

/** Step 2b: output passes through and is shipped as events; pipes pause when either side is slow. */
function passThrough(child: ChildProcess, shipper: LogShipper): void {
  const pipes: [Stream, Readable | null, Writable][] = [
    ['stdout', child.stdout, process.stdout],
    ['stderr', child.stderr, process.stderr],
  ];
  const waitingDrain = new Set<Stream>();
  const flow = () => {
    for (const [name, from] of pipes) {
      if (!from) continue;
      if (shipper.congested || waitingDrain.has(name)) from.pause();
      else from.resume();
    }
  };
  shipper.onProgress(flow);
  // A closed reader of our own output (`exec … | head`): stop passing through, keep recording.
  const broken = new Set<Stream>();
  for (const [name, , to] of pipes) {
    to.on('error', () => {
      broken.add(name);
      waitingDrain.delete(name);
      flow();
    });
  }
  for (const [name, from, to] of pipes) {
    from?.on('data', (chunk: Buffer) => {
      shipper.write(name, chunk);
      if (!broken.has(name) && !to.write(chunk)) {
        waitingDrain.add(name);
        to.once('drain', () => {
          waitingDrain.delete(name);
          flow();
        });
      }
      flow();
    });
    from?.on('end', () => shipper.end(name));
  }
}

function exitOf(child: ChildProcess): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (child.pid === undefined) resolve({ kind: 'spawn_failed', error });
    });
    child.once('close', (code, signal) => resolve({ kind: 'exited', code, signal }));
  });
}

/** Step 4: every line stored, then the verdict in one transaction; returns exec's exit code. */
async function recordVerdict(
  run: StartedRun,
  command: string[],
  outcome: Outcome,
  shipper: LogShipper,
  state: ExecState,
  say: Say,
): Promise<number> {
  await shipper.close();
  const statistics: JsonObject = {
    stdoutLines: shipper.lines.stdout,
    stderrLines: shipper.lines.stderr,
    ...(shipper.dropped ? { droppedLines: shipper.dropped } : {}),
  };
  if (outcome.kind === 'spawn_failed') {
    const message = `cannot run ${JSON.stringify(command[0])}: ${outcome.error.code ?? outcome.error.message}`;
    await persist(() =>
      run.fail({ error: { type: 'spawn_failed', message, details: { command, code: outcome.error.code ?? null } }, statistics }),
    );
    process.stderr.write(`error: ${message}\n`);
    return 127;
  }
  const exitCode = outcome.code ?? signalExit(outcome.signal!);
  if (state.finishedElsewhere) {
    say(`run ${run.id} was ${state.finishedElsewhere} elsewhere; the command exited with code ${exitCode}`);
    return exitCode;
  }
  if (state.cancelledBy) {
    const how = outcome.signal ? `was stopped by ${outcome.signal}` : `exited with code ${outcome.code}`;
    await persist(() => run.cancel({ reason: `exec received ${state.cancelledBy}; the command ${how}` }));
    say(`run ${run.id} cancelled (${state.cancelledBy})`);
    return exitCode;
  }
  if (outcome.code === 0) {
    await persist(() => run.complete({ output: { exitCode: 0 }, statistics }));
    say(`run ${run.id} completed`);
    return EXIT_OK;
  }
  const error: RunError =
    outcome.signal !== null
      ? { type: 'signal', message: `command was killed by ${outcome.signal}`, details: { signal: outcome.signal, exitCode } }
      : { type: 'exit_code', message: `command exited with code ${outcome.code}`, details: { exitCode } };
  await persist(() => run.fail({ error, statistics }));
  say(`run ${run.id} failed (${error.message})`);
  return exitCode;
}

async function execTracked(ledger: Target, command: string[], o: ExecOptions): Promise<number> {
  const say: Say = (m) => {
    if (!o.quiet) process.stderr.write(`runledger: ${m}\n`);
  };
  const params: JsonObject = { command, ...(o.param ?? {}) };
  const run = await ledger.startRun(
    compact({
      id: o.id,
      job: o.job,
      subject: o.subject,
      trigger: o.trigger,
      actor: o.actor,
      parentId: o.parent,
      leaseS: o.leaseS,
      notes: o.notes,
      params,
      tags: o.tag,
      externalIds: o.externalId,
    }),
  );
  if (!run.created) return alreadyExists(run, say);
  say(`run ${run.id} started (job ${o.job})`);

  const state: ExecState = { settled: false };
  const { child, unforward } = spawnForwarding(command, run.id, state);
  const onRunFinished = onFinishedElsewhere(ledger, run.id, child, o, state, say);
  const shipper = new LogShipper(run, { onWarning: say, onRunFinished });
  passThrough(child, shipper);

  // Step 3: heartbeats every lease/3 (events renew the lease too, but a quiet command must stay alive).
  const heartbeat = setInterval(
    () => {
      run.heartbeat().catch((err: unknown) => {
        if (err instanceof LedgerError && err.code === 'run_finished') onRunFinished();
      });
    },
    (o.leaseS * 1000) / 3,
  );
  const outcome = await exitOf(child);
  state.settled = true;
  clearInterval(heartbeat);

  try {
    return await recordVerdict(run, command, outcome, shipper, state, say);
  } catch (err) {
    // The verdict could not be stored: say so, but still pass the command's result through.
    const code = outcome.kind === 'exited' ? (outcome.code ?? signalExit(outcome.signal!)) : 127;
    process.stderr.write(`error: could not record the end of run ${run.id}: ${(err as Error).message}\n`);
    return code === 0 ? EXIT_FAILURE : code;
  } finally {
    unforward();
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('exec')
    .summary('run a command as a tracked run (output → events, exit code → status)')
    .description(
      'run a command as a tracked run: its output lines become events, it heartbeats, its exit code decides completed or failed ' +
        'and is exec’s own exit code; SIGINT/SIGTERM are forwarded and cancel the run',
    )
    .argument('<command...>', 'the command and its arguments, after --')
    .requiredOption('--job <name>', 'what kind of work')
    .option('--subject <subject>', 'what the run is about')
    .option('--trigger <trigger>', 'why it runs (schedule, manual…)')
    .option('--actor <actor>', 'who asked')
    .option('--parent <id>', 'parent run id')
    .option('--id <id>', 'run id; a repeated exec with the same id does not run the command again')
    .option('--lease-s <seconds>', 'lease (default 60); heartbeats every lease/3', intOption('--lease-s', 3), 60)
    .option(
      '--cancel-grace-s <seconds>',
      'when the run is cancelled from outside (dashboard, runledger cancel): SIGTERM, then SIGKILL after this many seconds (default 10)',
      intOption('--cancel-grace-s', 0),
      10,
    )
    .option('--notes <text>', 'notes')
    .option('--param <key=value>', 'a parameter (repeatable); the command itself is recorded as params.command', keyValueOption('--param'))
    .option('--tag <key=value>', 'a tag (repeatable)', keyValueOption('--tag'))
    .option('--external-id <key=value>', 'an external id (repeatable)', keyValueOption('--external-id'))
    .option('-q, --quiet', 'do not print runledger’s own status lines on stderr')
    .action(
      act(async (command: string[], o: ExecOptions, c: Command) => {
        if (command.length === 0 || command[0] === '') throw new UsageError('give the command to run after --');
        return withTarget(c, (ledger) => execTracked(ledger, command, o));
      }),
    );
  examples(cmd, [
    'runledger exec --job backup --subject db1 -- pg_dump -f backup.sql',
    'runledger exec --job tests --trigger ci --lease-s 120 -- npm test',
    'runledger exec --job nightly --id "nightly-$(date +%F)" -- ./nightly.sh   # at most once a day',
    '# the child sees RUNLEDGER_RUN_ID; the run shows its output:',
    'runledger runs show "$ID" --events 50',
  ]);
}
