/** The `runledger` command: global options, help, and every command from commands/index.ts. */
import { Command, Option } from 'commander';

import { VERSION } from '../core/version.js';
import * as commands from './commands/index.js';
import { examples } from './context.js';

export function buildProgram(): Command {
  const program = new Command('runledger')
    .description('A durable ledger of runs: one canonical record per run, hash-chained events, checkpoints, current status per subject.')
    .version(VERSION, '-V, --version')
    .addOption(
      new Option(
        '--data-dir <dir>',
        'embedded data directory (PGlite); default: the nearest .runledger here or above, else ./.runledger',
      ).env('RUNLEDGER_DATA_DIR'),
    )
    .addOption(new Option('--database-url <url>', 'PostgreSQL connection string instead of the data directory').env('DATABASE_URL'))
    .addOption(
      new Option(
        '--no-prepared-statements',
        'PostgreSQL: do not prepare statements (behind PgBouncer before 1.21 in transaction mode; also RUNLEDGER_PREPARED_STATEMENTS=off)',
      ),
    )
    .addOption(new Option('--server <url>', 'talk to a runledger server over HTTP').env('RUNLEDGER_SERVER'))
    .addOption(new Option('--token <token>', 'bearer token for --server').env('RUNLEDGER_TOKEN'))
    .addOption(new Option('--namespace <name>', 'namespace to address').env('RUNLEDGER_NAMESPACE').default('default'))
    // PostgreSQL schema; used by the tests to isolate each run.
    .addOption(new Option('--schema <name>').env('RUNLEDGER_SCHEMA').hideHelp())
    .configureHelp({ showGlobalOptions: true, sortSubcommands: true })
    .showHelpAfterError('(add --help for usage)')
    // Throw instead of exiting so that main.ts maps usage errors to exit code 2.
    .exitOverride();
  examples(program, [
    'runledger serve                                  # API + dashboard on http://127.0.0.1:7070',
    'ID=$(runledger start --job nightly-export --subject acme)',
    'runledger event "$ID" progress --body \'{"done":3}\'',
    'runledger complete "$ID" --output \'{"rows":42}\'',
    'runledger exec --job backup --subject db1 -- pg_dump -f backup.sql',
    'runledger runs ls --status failed,timed_out --json',
  ]);
  for (const register of Object.values(commands)) register(program);
  checkRequiredAfterUnknown(program);
  return program;
}

/**
 * Commander reports a missing required option before an unknown one, so `start --jobb x`
 * would say "required option '--job' not specified" instead of "unknown option '--jobb'
 * (Did you mean --job?)". Required options are therefore checked in a preAction hook,
 * which runs after commander's unknown-option check, with commander's own message.
 */
function checkRequiredAfterUnknown(program: Command): void {
  const required = new Set<Option>();
  const walk = (cmd: Command) => {
    for (const option of cmd.options) {
      if (!option.mandatory) continue;
      option.mandatory = false;
      required.add(option);
    }
    cmd.commands.forEach(walk);
  };
  walk(program);
  program.hook('preAction', (_program, actionCommand) => {
    for (let cmd: Command | null = actionCommand; cmd; cmd = cmd.parent) {
      for (const option of cmd.options) {
        if (required.has(option) && cmd.getOptionValue(option.attributeName()) === undefined)
          cmd.error(`error: required option '${option.flags}' not specified`, {
            code: 'commander.missingMandatoryOptionValue',
            exitCode: 2,
          });
      }
    }
  });
}
