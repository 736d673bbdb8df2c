import { type Command, Option } from 'commander';

import { createToken, listTokens, revokeToken, SCOPES } from '../../server/tokens.js';
import { act, directOptions, examples, rootOf } from '../context.js';
import { printJson, println, table } from '../output.js';
import { openDirect } from '../target.js';

async function withDatabase<T>(c: Command, fn: (ledger: Awaited<ReturnType<typeof openDirect>>) => Promise<T>): Promise<T> {
  const ledger = await openDirect({ ...directOptions(c, 'tokens'), purpose: 'tokens' });
  try {
    return await fn(ledger);
  } finally {
    await ledger.close();
  }
}

export function register(program: Command): void {
  const tokens = program.command('tokens').description('API tokens for the server: each bound to one namespace and one scope');

  const create = tokens
    .command('create')
    .description('create a token for --namespace and print it (shown once; its last line is the token)')
    .addOption(new Option('--scope <scope>', 'read, write (read + write runs) or admin').choices(SCOPES).makeOptionMandatory())
    .option('--name <name>', 'a label, e.g. ci or dashboard')
    .option('--json', 'print { id, token, namespace, scope } as JSON')
    .action(
      act(async (o: { scope: string; name?: string; json?: boolean }, c: Command) =>
        withDatabase(c, async (ledger) => {
          const namespace = rootOf(c).opts<{ namespace: string }>().namespace;
          const t = await createToken(ledger.database, { namespace, scope: o.scope, ...(o.name ? { name: o.name } : {}) });
          if (o.json) return printJson(t);
          process.stderr.write(`token ${t.id} (namespace ${t.namespace}, scope ${t.scope}); it is shown only now:\n`);
          println(t.token);
        }),
      ),
    );
  examples(create, [
    'runledger tokens create --namespace team-a --scope write --name ci',
    'TOKEN=$(runledger tokens create --scope read | tail -n 1)',
  ]);

  const ls = tokens
    .command('ls')
    .alias('list')
    .description('list tokens (never their secrets)')
    .option('--json', 'print the tokens as JSON')
    .action(
      act(async (o: { json?: boolean }, c: Command) =>
        withDatabase(c, async (ledger) => {
          const list = await listTokens(ledger.database);
          if (o.json) return printJson(list);
          if (!list.length) return println('no tokens');
          println(
            table(
              ['ID', 'NAMESPACE', 'SCOPE', 'NAME', 'CREATED', 'LAST USED', 'REVOKED'],
              list.map((t) => [t.id, t.namespace, t.scope, t.name ?? '-', t.createdAt, t.lastUsedAt ?? '-', t.revokedAt ?? '-']),
            ),
          );
        }),
      ),
    );
  examples(ls, ['runledger tokens ls', 'runledger tokens ls --json | jq -r ".[] | select(.revokedAt == null) | .id"']);

  const revoke = tokens
    .command('revoke')
    .description('revoke a token; it is refused from the next request on')
    .argument('<id>', 'token id (from tokens ls)')
    .option('--json', 'print the revoked token as JSON')
    .action(
      act(async (id: string, o: { json?: boolean }, c: Command) =>
        withDatabase(c, async (ledger) => {
          const t = await revokeToken(ledger.database, id);
          if (o.json) return printJson(t);
          println(`revoked ${t.id} (namespace ${t.namespace}, scope ${t.scope}) at ${t.revokedAt}`);
        }),
      ),
    );
  examples(revoke, ['runledger tokens revoke 3f9a1c2b4d5e6f70']);
  examples(tokens, ['runledger tokens create --namespace team-a --scope write', 'runledger tokens ls', 'runledger tokens revoke ID']);
}
