/**
 * `npm start` (scripts/start.mjs): starts from the build without rebuilding when the build is
 * fresh, prints one human line with the dashboard's URL, and keeps request logs quiet.
 * (`npm test` builds first, so here the build is fresh; run alone after an edit, it rebuilds.)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { REPO, tempDir, waitForOutput } from './cli.js';

const store = tempDir();
afterAll(() => store.cleanup());

describe('npm start', { timeout: 300_000 }, () => {
  it('serves from the build with one human line and no request logs', async () => {
    const child = spawn(process.execPath, [join(REPO, 'scripts/start.mjs'), '--port', '0', '--data-dir', join(store.dir, 'data')], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const [, url] = await waitForOutput(child, /runledger listening on (http:\/\/\S+)/);
      expect(out).toMatch(/runledger listening on http:\/\/127\.0\.0\.1:\d+ .*— dashboard: http:\/\/127\.0\.0\.1:\d+\//);
      for (let i = 0; i < 5; i++) expect((await fetch(`${url}/v1/runs`)).status).toBe(200);
      expect((await fetch(`${url}/`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 300));
      expect(out).not.toMatch(/request completed|incoming request/);
      if (process.env.RUNLEDGER_TEST_CLI === 'dist') expect(err).not.toMatch(/building/);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('says how to put runledger on PATH while it is not there, and nothing once it is', async () => {
    const bin = join(store.dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'runledger'), '#!/bin/sh\n', { mode: 0o755 });
    const base = [dirname(process.execPath), '/usr/bin', '/bin'].join(':');
    for (const [PATH, hinted] of [
      [base, true],
      [`${bin}:${base}`, false],
    ] as const) {
      const child = spawn(process.execPath, [join(REPO, 'scripts/start.mjs'), '--port', '0', '--data-dir', join(store.dir, 'data')], {
        cwd: REPO,
        env: { ...process.env, PATH },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        const [, url] = await waitForOutput(child, /runledger listening on (http:\/\/\S+)/);
        // Up and serving (as a user would find it) before it is stopped.
        expect((await fetch(`${url}/v1/runs`)).status).toBe(200);
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
      const hint = 'the runledger command is not on your PATH; `npm link` here puts it there';
      if (hinted) expect(err).toContain(hint);
      else expect(err).not.toContain(hint);
    }
  });
});
