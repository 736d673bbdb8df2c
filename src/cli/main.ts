#!/usr/bin/env node
/** Entry point of the `runledger` command (package bin). */
import { type Command, CommanderError } from 'commander';

import { EXIT_OK, EXIT_USAGE, reportError } from './errors.js';
import { buildProgram } from './program.js';

/** Exits once stdout and stderr have flushed (a pipe reader must get every line). */
function exit(code: number): void {
  process.exitCode = code;
  // Should a write callback never come (a destroyed stream), exit anyway.
  setTimeout(() => process.exit(code), 2000).unref();
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  let actionCommand: Command | undefined;
  program.hook('preAction', (_program, cmd) => {
    actionCommand = cmd;
  });
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help / version).
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT_OK;
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    return reportError(err, Boolean(actionCommand?.opts().json));
  }
}

// `runledger runs ls | head`: a reader that goes away is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

main(process.argv).then(exit, (err) => {
  process.stderr.write(`error: ${(err as Error)?.stack ?? String(err)}\n`);
  exit(1);
});
