/** Readable loading, empty and error states. */
import type { ReactNode } from 'react';

import { ApiError } from '../api';

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="state loading" role="status">
      {what}…
    </p>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state empty" role="status">
      <p className="state-title">{title}</p>
      {children && <div className="state-body">{children}</div>}
    </div>
  );
}

export function ErrorState({ error, onRetry, children }: { error: Error; onRetry?: () => void; children?: ReactNode }) {
  const api = error instanceof ApiError ? error : undefined;
  const title =
    api?.code === 'not_found'
      ? 'Not found'
      : api?.code === 'forbidden'
        ? 'Not allowed'
        : api?.code === 'network'
          ? 'Cannot reach the server'
          : api?.code === 'validation_failed'
            ? 'The request was refused'
            : 'Something went wrong';
  return (
    <div className="state error" role="alert">
      <p className="state-title">{title}</p>
      <p className="state-body">
        {error.message}
        {api?.code && api.code !== 'network' && <code className="muted"> ({api.code})</code>}
      </p>
      <div className="state-actions">
        {onRetry && (
          <button type="button" onClick={onRetry}>
            Try again
          </button>
        )}
        {children}
      </div>
    </div>
  );
}
