/** `runledger expect set|ls|rm`: expectations from the command line. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Expectation } from '../../src/core/types.js';
import { dropSchemas } from '../helpers.js';
import { type CliStore, cliStore, runCli } from './cli.js';

let store: CliStore;
const cli = (...args: string[]) => runCli([...store.args, ...args]);

beforeAll(() => {
  store = cliStore();
});
afterAll(async () => {
  store.cleanup();
  await dropSchemas();
});

describe('runledger expect', { timeout: 120_000 }, () => {
  it('sets, lists and removes expectations; bad input is exit 2 naming the field', async () => {
    const set = await cli('expect', 'set', 'compliance-check', '--every', '12h', '--grace', '30m');
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    expect(set.stdout).toContain('expectation of compliance-check: every 12h, grace 30m, per subject');
    const cron = await cli(
      'expect',
      'set',
      'nightly',
      '--cron',
      '0 2 * * *',
      '--timezone',
      'Europe/Berlin',
      '--grace',
      '1h',
      '--per-job',
      '--json',
    );
    expect(cron.code).toBe(0);
    expect(JSON.parse(cron.stdout)).toMatchObject({ job: 'nightly', cron: '0 2 * * *', timezone: 'Europe/Berlin', perSubject: false });

    const ls = await cli('expect', 'ls', '--json');
    expect((JSON.parse(ls.stdout) as Expectation[]).map((e) => e.job)).toEqual(['compliance-check', 'nightly']);
    expect((await cli('expect', 'ls')).stdout).toMatch(/compliance-check\s+every 12h\s+30m\s+each subject/);

    const bad = await cli('expect', 'set', 'x', '--cron', '99 * * * *', '--grace', '5m');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('cron');
    const zone = await cli('expect', 'set', 'x', '--cron', '0 * * * *', '--timezone', 'Nowhere/Land', '--grace', '5m');
    expect(zone.code).toBe(2);
    expect(zone.stderr).toContain('timezone must be an IANA time zone');
    const zero = await cli('expect', 'set', 'x', '--every', '0m', '--grace', '5m');
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain('every must be more than zero');

    expect((await cli('expect', 'rm', 'nightly')).code).toBe(0);
    const again = await cli('expect', 'rm', 'nightly');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('job nightly has no expectation');
    expect((await cli('expect', 'ls')).stdout).not.toContain('nightly');
  });
});
