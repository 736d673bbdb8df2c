/** Every command documents itself: a description and examples in --help. */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { buildProgram } from '../../src/cli/program.js';

function all(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(all)];
}

function helpOf(cmd: Command): string {
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  cmd.outputHelp();
  return out;
}

describe('runledger --help', () => {
  const program = buildProgram();
  const commands = all(program).filter((c) => c.name() !== 'help');

  it('lists the commands of the design', () => {
    const names = program.commands.map((c) => c.name());
    for (const name of [
      'serve',
      'migrate',
      'runs',
      'start',
      'heartbeat',
      'complete',
      'fail',
      'cancel',
      'event',
      'exec',
      'reap',
      'verify',
      'tokens',
      'retention',
      'prune',
      'export',
    ])
      expect(names).toContain(name);
    expect(program.commands.find((c) => c.name() === 'runs')!.commands.map((c) => c.name())).toEqual(['ls', 'show', 'tail']);
  });

  it.each(commands.map((c) => [c.parent ? `${c.parent.name()} ${c.name()}` : c.name(), c] as const))(
    '%s has a description and examples',
    (_name, cmd) => {
      const help = helpOf(cmd);
      expect(cmd.description().length).toBeGreaterThan(10);
      expect(help).toContain(cmd.description().slice(0, 40));
      expect(help).toMatch(/\nExamples:\n {2}\$ .*runledger /);
    },
  );

  it('shows the global options in every command', () => {
    const help = helpOf(program.commands.find((c) => c.name() === 'exec')!);
    for (const flag of ['--data-dir', '--database-url', '--server', '--token', '--namespace']) expect(help).toContain(flag);
    expect(help).not.toContain('--schema');
  });
});
