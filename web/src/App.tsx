import { lazy, Suspense, useEffect, useRef, useState, useSyncExternalStore } from 'react';

import { getAuthState, getToken, setToken, subscribeAuth } from './api';
import { Empty, Loading } from './components/States';
import { TokenPrompt } from './components/TokenPrompt';
import { ComparePage } from './pages/ComparePage';
import { RetentionPage } from './pages/RetentionPage';
import { RunDetailPage } from './pages/RunDetailPage';
import { RunsPage } from './pages/RunsPage';
import { SubjectsPage } from './pages/SubjectsPage';
import { WebhooksPage } from './pages/WebhooksPage';
import { href, navigate, type Route, useRoute } from './router';

// uPlot only loads with the charts page.
const ChartsPage = lazy(() => import('./pages/ChartsPage'));

const NAV = [
  { path: '/runs', label: 'Runs' },
  { path: '/subjects', label: 'Subjects' },
  { path: '/charts', label: 'Charts' },
  { path: '/compare', label: 'Compare' },
  { path: '/webhooks', label: 'Webhooks' },
  { path: '/retention', label: 'Retention' },
];

function NamespaceSelector({ route }: { route: Route }) {
  const [value, setValue] = useState(route.namespace);
  const [shown, setShown] = useState(route.namespace);
  if (shown !== route.namespace) {
    setShown(route.namespace);
    setValue(route.namespace);
  }
  return (
    <form
      className="ns-form"
      onSubmit={(e) => {
        e.preventDefault();
        const q = Object.fromEntries(route.query);
        navigate(href(route.path, { ...q, namespace: value.trim() || 'default' }));
      }}
    >
      <label htmlFor="ns-input">Namespace</label>
      <input id="ns-input" value={value} onChange={(e) => setValue(e.target.value)} size={12} spellCheck={false} />
      <button type="submit">Switch</button>
    </form>
  );
}

function Page({ route }: { route: Route }) {
  const [first, second] = route.segments;
  const ns = route.namespace;
  switch (first ?? 'runs') {
    case 'runs':
      return second ? <RunDetailPage key={`${ns}/${second}`} ns={ns} id={second} /> : <RunsPage route={route} />;
    case 'subjects':
      return <SubjectsPage route={route} />;
    case 'charts':
      return (
        <Suspense fallback={<Loading what="Loading charts" />}>
          <ChartsPage route={route} />
        </Suspense>
      );
    case 'compare':
      return <ComparePage route={route} />;
    case 'webhooks':
      return <WebhooksPage route={route} />;
    case 'retention':
      return <RetentionPage route={route} />;
    default:
      return (
        <Empty title="No such page">
          <a href={href('/runs')}>Go to the runs</a>
        </Empty>
      );
  }
}

export function App() {
  const route = useRoute();
  const auth = useSyncExternalStore(subscribeAuth, getAuthState);
  const token = useSyncExternalStore(subscribeAuth, getToken);
  const section = route.segments[0] ?? 'runs';
  // A new page (not a new filter) starts at the top, with focus on the content, and names itself.
  const lastPath = useRef(route.path);
  const item = route.segments[1];
  useEffect(() => {
    const label = NAV.find((n) => n.path === `/${section}`)?.label ?? 'runledger';
    document.title = `${item ? `${item} · ` : ''}${label} · runledger`;
    if (lastPath.current === route.path) return;
    lastPath.current = route.path;
    window.scrollTo(0, 0);
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [route.path, item, section]);
  return (
    <>
      <a className="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header className="topbar">
        <a className="brand" href={href('/runs')}>
          runledger
        </a>
        <nav aria-label="Main">
          {NAV.map((n) => (
            <a key={n.path} href={href(n.path)} aria-current={section === n.path.slice(1) ? 'page' : undefined}>
              {n.label}
            </a>
          ))}
        </nav>
        <div className="topbar-end">
          <NamespaceSelector route={route} />
          {token && (
            <button type="button" className="link-button" onClick={() => setToken(null)} title="Forget the stored API token">
              Forget token
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} />
      </main>
      {auth.needed && <TokenPrompt rejected={auth.rejected} />}
    </>
  );
}
