// `npm start`: serves the embedded ledger from the build, building first only when a source
// is newer than the build (a fresh clone, or after an edit), so a second start takes a second,
// not a rebuild. Arguments after `npm start --` go to `runledger serve`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'dist', 'cli', 'main.js');
const web = join(root, 'dist', 'web', 'index.html');

function newest(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let n = s.mtimeMs;
  for (const name of readdirSync(path)) n = Math.max(n, newest(join(path, name)));
  return n;
}

const sources = Math.max(...['src', 'web', 'migrations', 'package.json'].map((p) => newest(join(root, p))));
const built = existsSync(main) && existsSync(web) ? Math.min(statSync(main).mtimeMs, statSync(web).mtimeMs) : 0;
if (built < sources) {
  process.stderr.write(built ? 'runledger: sources changed since the last build; building…\n' : 'runledger: first start; building…\n');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const build = spawnSync(npm, ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
// The README's commands use the bare `runledger`: say how to get it when it is not on PATH.
const onPath = (process.env.PATH ?? '').split(process.platform === 'win32' ? ';' : ':').some((d) => d && existsSync(join(d, 'runledger')));
if (!onPath)
  process.stderr.write(
    'runledger: the runledger command is not on your PATH; `npm link` here puts it there (or use `npx runledger …` in this folder)\n',
  );
const serve = spawn(process.execPath, [main, 'serve', ...process.argv.slice(2)], { stdio: 'inherit' });
// Ctrl-C reaches the server from the terminal itself; a SIGTERM sent to this process is passed on.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => serve.kill('SIGTERM'));
serve.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
