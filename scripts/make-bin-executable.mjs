// Runs after `tsc -p tsconfig.build.json` (npm run build): tsc does not keep the executable
// bit, so the package's bin would not run when invoked directly.
import { chmodSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');
if (existsSync(cli)) chmodSync(cli, 0o755);
