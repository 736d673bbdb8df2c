import { type Command, Option } from 'commander';

import type { CreatedToken, Scope, TokenInfo } from '../../core/tokens.js';
import { createToken, listTokens, revokeToken, SCOPES } from '../../server/tokens.js';
import { act, examples, rootOf, withTarget } from '../context.js';
import { printJson, println, table } from '../output.js';

/** What the token commands need, on the database itself or through a server (which allows only its own namespace). */
interface TokenStore {
  create(input: { namespace: string; scope: Scope; name?: string }): Promise<CreatedToken>;
  list(): Promise<TokenInfo[]>;
  revoke(id: string): Promise<TokenInfo>;
}

/**
 * The token store of the command's target: the database (every namespace's tokens), or
 * the server that holds the data directory or that --server names (its namespace's
 * tokens, with an admin token when the server requires one).
 */
async function withTokens(c: Command, fn: (tokens: TokenStore) => Promise<number | void>): Promise<number> {
  return withTarget(c, async (ledger) => {
    const info = ledger.target;
    if (info.kind === 'http') {
      const client = info.client;
      return fn({
        create: ({ scope, name }) => client.createToken({ scope, ...(name ? { name } : {}) }),
        list: () => client.listTokens(),
        revoke: (id) => client.revokeToken(id),
      });
    }
    const db = info.ledger.database;
    return fn({ create: (input) => createToken(db, input), list: () => listTokens(db), revoke: (id) => revokeToken(db, id) });
  });
}

export function register(program: Command): void {
  const tokens = program
    .command('tokens')
    .description(
      'API tokens for the server: each bound to one namespace and one scope. On the store itself every namespace’s tokens; ' +
        'through a running server (the one holding the data directory, or --server) its namespace’s, with an admin token where tokens are required',
    );

  const create = tokens
    .command('create')
    .description('create a token for --namespace and print it (shown once; its last line is the token)')
    .addOption(new Option('--scope <scope>', 'read, write (read + write runs) or admin').choices(SCOPES).makeOptionMandatory())
    .option('--name <name>', 'a label, e.g. ci or dashboard')
    .option('--json', 'print { id, token, namespace, scope } as JSON')
    .action(
      act(async (o: { scope: string; name?: string; json?: boolean }, c: Command) =>
        withTokens(c, async (tokens) => {
          const namespace = rootOf(c).opts<{ namespace: string }>().namespace;
          const t = await tokens.create({ namespace, scope: o.scope as Scope, ...(o.name ? { name: o.name } : {}) });
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
        withTokens(c, async (tokens) => {
          const list = await tokens.list();
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
        withTokens(c, async (tokens) => {
          const t = await tokens.revoke(id);
          if (o.json) return printJson(t);
          println(`revoked ${t.id} (namespace ${t.namespace}, scope ${t.scope}) at ${t.revokedAt}`);
        }),
      ),
    );
  examples(revoke, ['runledger tokens revoke 3f9a1c2b4d5e6f70']);
  examples(tokens, ['runledger tokens create --namespace team-a --scope write', 'runledger tokens ls', 'runledger tokens revoke ID']);
}
