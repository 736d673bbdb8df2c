// Runs after `tsc -p tsconfig.build.json` (npm run build). Copies build assets into dist/
// (none yet: migrations are read from the package root) and makes the CLI executable.
import { chmodSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// The package bin: `tsc` does not keep the executable bit.
const cli = join(root, 'dist', 'cli', 'main.js');
if (existsSync(cli)) chmodSync(cli, 0o755);
