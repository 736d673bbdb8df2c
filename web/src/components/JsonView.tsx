/** A collapsible JSON viewer built on <details>, so it is keyboard-operable as it is. */
import type { Json } from '../api';

function Scalar({ value }: { value: Json }) {
  if (value === null) return <span className="j-null">null</span>;
  if (typeof value === 'string') return <span className="j-str">{JSON.stringify(value)}</span>;
  if (typeof value === 'number') return <span className="j-num">{value}</span>;
  return <span className="j-bool">{String(value)}</span>;
}

function Node({ name, value, depth, openDepth }: { name?: string; value: Json; depth: number; openDepth: number }) {
  const label = name !== undefined && <span className="j-key">{name}: </span>;
  if (value === null || typeof value !== 'object') {
    return (
      <div className="j-row">
        {label}
        <Scalar value={value} />
      </div>
    );
  }
  const entries: [string, Json][] = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length} ${entries.length === 1 ? 'key' : 'keys'}}`;
  if (!entries.length)
    return (
      <div className="j-row">
        {label}
        <span className="muted">{Array.isArray(value) ? '[]' : '{}'}</span>
      </div>
    );
  return (
    <details className="j-node" open={depth < openDepth}>
      <summary>
        {label}
        <span className="muted">{summary}</span>
      </summary>
      <div className="j-children">
        {entries.map(([k, v]) => (
          <Node key={k} name={k} value={v} depth={depth + 1} openDepth={openDepth} />
        ))}
      </div>
    </details>
  );
}

export function JsonView({ value, openDepth = 2 }: { value: Json | undefined; openDepth?: number }) {
  if (value === undefined) return <span className="muted">—</span>;
  return (
    <div className="json">
      <Node value={value} depth={0} openDepth={openDepth} />
    </div>
  );
}

/** One line of JSON, for table cells and event bodies. */
export function inlineJson(value: Json | undefined, max = 160): string {
  if (value === undefined) return '';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
