/**
 * The package as users install it: `npm pack` this checkout, install the tarball into an
 * empty project in a temporary directory, and use it from there — the library on its
 * embedded default, `npx runledger exec`, `runs ls`, `--version`, and `serve` with its
 * dashboard. Nothing here reads the checkout's files, so whatever `files` in package.json
 * leaves out of the tarball fails this test.
 *
 * Needs the build (`npm run build`; `npm test` builds first). Runs once, on the embedded
 * backend: the installed package is the same code whichever database it is pointed at.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { onPostgres } from '../helpers.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

let tmp = '';
let app = '';
const children: ChildProcess[] = [];

/** Runs a command in the installed project, with no runledger settings from the outer shell. */
function inApp(file: string, args: string[]) {
  const env = { ...process.env };
  for (const k of ['DATABASE_URL', 'RUNLEDGER_SERVER', 'RUNLEDGER_TOKEN', 'RUNLEDGER_NAMESPACE', 'RUNLEDGER_SCHEMA', 'RUNLEDGER_RUN_ID'])
    delete env[k];
  return run(file, args, { cwd: app, env, timeout: 60_000 });
}

/** Signals a detached child's whole process group (npx and the bin it started); a group already gone is fine. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals) {
  try {
    process.kill(-child.pid!, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

describe.skipIf(onPostgres)('the installed package (npm pack, then npm install of the tarball into an empty project)', () => {
  beforeAll(async () => {
    if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
    tmp = await mkdtemp(join(tmpdir(), 'runledger-installed-'));
    // --ignore-scripts: pack the build that is there (prepack would rebuild it).
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], { cwd: REPO, timeout: 120_000 });
    const tarball = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error('npm pack wrote no tarball');
    app = join(tmp, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(tmp, tarball)], { cwd: app, timeout: 300_000 });
  }, 360_000);

  afterAll(async () => {
    // npx starts the bin as its child: end the whole process group, not only npx.
    for (const c of children) killGroup(c, 'SIGKILL');
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('the library opens an embedded ledger and records a run', async () => {
    await writeFile(
      join(app, 'use.mjs'),
      `import { openLedger } from 'runledger';
const ledger = await openLedger({ dataDir: './lib-ledger' });
const run = await ledger.startRun({ job: 'installed', subject: 'tarball' });
await run.event('step', { n: 1 });
await run.complete({ output: { ok: true } });
const got = await ledger.getRun(run.id);
const verified = await ledger.verify(run.id);
console.log(JSON.stringify({ status: got.status, output: got.output, ok: verified.ok }));
await ledger.close();
`,
    );
    const { stdout } = await inApp(process.execPath, ['use.mjs']);
    expect(JSON.parse(stdout)).toEqual({ status: 'completed', output: { ok: true }, ok: true });
  });

  it('npx runledger --version prints the package version', async () => {
    const { stdout } = await inApp('npx', ['runledger', '--version']);
    expect(stdout.trim()).toBe(VERSION);
  });

  it('npx runledger exec records a command as a run, and runs ls lists it', async () => {
    const exec = await inApp('npx', ['runledger', 'exec', '--job', 'installed-exec', '--', process.execPath, '-e', 'console.log("hello")']);
    expect(exec.stdout).toContain('hello');
    const ls = await inApp('npx', ['runledger', 'runs', 'ls', '--json']);
    const { runs } = JSON.parse(ls.stdout) as { runs: { job: string; status: string }[] };
    expect(runs).toEqual([expect.objectContaining({ job: 'installed-exec', status: 'completed' })]);
  });

  it('npx runledger serve answers the API, reports the package version and serves the dashboard', async () => {
    const child = spawn('npx', ['runledger', 'serve', '--port', '0', '--data-dir', './served'], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so that the server npx started can be signalled with it.
      detached: true,
    });
    children.push(child);
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${output}`)), 60_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${output}`)));
    });
    const health = (await (await fetch(`${url}/healthz`)).json()) as { version: string };
    expect(health.version).toBe(VERSION);
    const created = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"job":"via-http"}',
    });
    expect(created.status).toBe(201);
    const page = await fetch(`${url}/`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('<script');
    // The dashboard's script is served too, not only its page.
    const script = /src="([^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeTruthy();
    expect((await fetch(new URL(script!, url))).status).toBe(200);
    // SIGTERM to the group reaches the server itself, not only npx; afterAll SIGKILLs what is left.
    killGroup(child, 'SIGTERM');
  });
});
