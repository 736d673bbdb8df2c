import { readFileSync } from 'node:fs';

/**
 * The package's version, read from its package.json: the one source for `runledger --version`,
 * the server's /healthz and the OpenAPI document. Resolved relative to this module, which sits
 * two levels below the package root both in src/ (development) and in dist/ (installed).
 */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
