/** "Copy CLI command": the `runledger` invocation that starts a run like this one again. */
import { useState } from 'react';

import type { Run } from '../api';

/** POSIX shell quoting: bare when safe, else single quotes with ' written as '\''. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * `runledger exec … -- command` for a run that `exec` recorded (its params hold the command),
 * else `runledger start …` with the same job, subject, trigger, parent and params.
 */
export function reproduceCommand(run: Run): string {
  const args = ['runledger'];
  const { command, ...params } = run.params as Record<string, unknown>;
  const isExec = Array.isArray(command) && command.length > 0 && command.every((c) => typeof c === 'string');
  args.push(isExec ? 'exec' : 'start', '--job', run.job);
  if (run.subject) args.push('--subject', run.subject);
  if (run.trigger) args.push('--trigger', run.trigger);
  if (run.parentId) args.push('--parent', run.parentId);
  for (const [k, v] of Object.entries(run.tags)) args.push('--tag', `${k}=${v}`);
  const rest = isExec ? params : (run.params as Record<string, unknown>);
  if (isExec) {
    // exec takes --param key=value with string values only.
    for (const [k, v] of Object.entries(rest)) args.push('--param', `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  } else if (Object.keys(rest).length) args.push('--params', JSON.stringify(rest));
  const line = args.map(shellQuote).join(' ');
  return isExec ? `${line} -- ${(command as string[]).map(shellQuote).join(' ')}` : line;
}

export function CopyCommand({ run }: { run: Run }) {
  const [copied, setCopied] = useState<'yes' | 'no' | null>(null);
  const command = reproduceCommand(run);
  return (
    <details className="copy-command">
      <summary>CLI command</summary>
      <pre className="mono small" data-testid="cli-command">
        {command}
      </pre>
      <button
        type="button"
        className="small-button"
        onClick={() => {
          navigator.clipboard.writeText(command).then(
            () => setCopied('yes'),
            () => setCopied('no'),
          );
        }}
      >
        Copy
      </button>{' '}
      <span role="status" className="muted small">
        {copied === 'yes' ? 'Copied.' : copied === 'no' ? 'Copying was refused: select the text above.' : ''}
      </span>
    </details>
  );
}
