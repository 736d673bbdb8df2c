/** `runledger webhooks add|ls|deliveries|replay|rm`: webhooks from the command line. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { CreatedWebhook } from '../../src/core/webhooks.js';
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

describe('runledger webhooks', { timeout: 120_000 }, () => {
  it('adds (showing the secret once), lists, shows deliveries, replays and removes; bad input is exit 2 naming the field', async () => {
    const add = await cli(
      'webhooks',
      'add',
      'https://hooks.example.com/rl',
      '--types',
      'run.finished,subject.changed',
      '--job',
      'nightly',
      '--json',
    );
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    const hook = JSON.parse(add.stdout) as CreatedWebhook;
    expect(hook).toMatchObject({ url: 'https://hooks.example.com/rl', types: ['run.finished', 'subject.changed'], job: 'nightly' });
    expect(hook.secret).toMatch(/^whsec_/);

    const ls = await cli('webhooks', 'ls');
    expect(ls.stdout).toMatch(
      new RegExp(`${hook.id}\\s+https://hooks.example.com/rl\\s+run.finished,subject.changed\\s+nightly\\s+0\\s+0\\s+enabled`),
    );
    expect(ls.stdout).not.toContain(hook.secret.slice(6));

    const bad = await cli('webhooks', 'add', 'ftp://example.com', '--types', 'run.finished');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('url must use http or https');
    const badType = await cli('webhooks', 'add', 'https://example.com', '--types', 'run.done');
    expect(badType.code).toBe(2);
    expect(badType.stderr).toContain('types must be among run.finished');

    expect((await cli('webhooks', 'deliveries', hook.id)).stdout).toContain('no deliveries');
    expect((await cli('webhooks', 'replay', hook.id, '--after', '0')).stdout).toContain(`queued 0 deliveries for webhook ${hook.id}`);
    expect((await cli('webhooks', 'rm', hook.id)).code).toBe(0);
    const again = await cli('webhooks', 'rm', hook.id);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no webhook ${hook.id}`);
    expect((await cli('webhooks', 'ls')).stdout).toContain('no webhooks');
  });
});
