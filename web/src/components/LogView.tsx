/**
 * The output of a `runledger exec` run: its `log` events ({ stream, line }) as plain text,
 * stderr in its own colour, with search, follow (stay at the newest line) and download.
 */
import { useLayoutEffect, useMemo, useRef, useState } from 'react';

import type { LedgerEvent } from '../api';

interface LogLine {
  seq: number;
  stream: string;
  line: string;
}

/** The run's log lines, in seq order; events of other types are not logs. */
export function logLines(events: LedgerEvent[]): LogLine[] {
  const out: LogLine[] = [];
  for (const e of events) {
    if (e.type !== 'log') continue;
    const body = e.body as { stream?: unknown; line?: unknown } | null;
    if (!body || typeof body.line !== 'string') continue;
    out.push({ seq: e.seq, stream: typeof body.stream === 'string' ? body.stream : 'stdout', line: body.line });
  }
  return out;
}

export function LogView({ runId, events, live }: { runId: string; events: LedgerEvent[]; live: boolean }) {
  const lines = useMemo(() => logLines(events), [events]);
  const [search, setSearch] = useState('');
  const [follow, setFollow] = useState(true);
  const box = useRef<HTMLDivElement>(null);
  const needle = search.trim().toLowerCase();
  const shown = needle ? lines.filter((l) => l.line.toLowerCase().includes(needle)) : lines;

  useLayoutEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [follow, shown.length]);

  if (!lines.length) return null;
  const download = () => {
    const text = lines.map((l) => l.line).join('\n') + '\n';
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `${runId}.log`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <section className="card" aria-labelledby="logs-title">
      <div className="card-head">
        <h2 id="logs-title">
          Logs <span className="muted">({needle ? `${shown.length} of ${lines.length} lines` : `${lines.length} lines`})</span>
        </h2>
        <div className="log-tools">
          <label className="field inline">
            <span className="sr-only">Search the logs</span>
            <input
              type="search"
              placeholder="search"
              value={search}
              onChange={(e) => setSearch(e.target.value)}
              aria-label="Search the logs"
            />
          </label>
          <label className="field inline">
            <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} />
            Follow{live ? '' : ' (end)'}
          </label>
          <button type="button" className="small-button" onClick={download}>
            Download
          </button>
        </div>
      </div>
      <div className="log-view" ref={box} role="log" aria-label="Command output" tabIndex={0}>
        {shown.map((l) => (
          <div key={l.seq} className={`log-line stream-${l.stream === 'stderr' ? 'stderr' : 'stdout'}`} data-seq={l.seq}>
            {l.line || '\u00a0'}
          </div>
        ))}
        {needle && !shown.length && <div className="muted">No line contains “{search.trim()}”.</div>}
      </div>
    </section>
  );
}
