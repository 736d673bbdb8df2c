/**
 * Hash routing (`#/runs/ID?namespace=team-a`): works behind any static server, and every
 * page is a real link. The namespace travels in the query of every link.
 */
import { useEffect, useState } from 'react';

export interface Route {
  path: string;
  segments: string[];
  query: URLSearchParams;
  namespace: string;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  const segments = path
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { path, segments, query, namespace: query.get('namespace') || 'default' };
}

export function useRoute(): Route {
  const [hash, setHash] = useState(() => window.location.hash);
  useEffect(() => {
    const on = () => setHash(window.location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return parseHash(hash);
}

/** A link to `path` with `query`, keeping the current namespace unless `query` sets one. */
export function href(path: string, query: Record<string, string | undefined | null> = {}): string {
  const params = new URLSearchParams();
  const ns = 'namespace' in query ? query.namespace : parseHash(window.location.hash).namespace;
  if (ns && ns !== 'default') params.set('namespace', ns);
  for (const [k, v] of Object.entries(query)) if (k !== 'namespace' && v) params.set(k, v);
  const qs = params.toString();
  return `#${path}${qs ? `?${qs}` : ''}`;
}

export const runHref = (id: string) => href(`/runs/${encodeURIComponent(id)}`);

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) {
    window.history.replaceState(null, '', to);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else window.location.hash = to.replace(/^#/, '');
}
