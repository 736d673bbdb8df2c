import type { RunStatus } from '../api';
import { statusLabel } from '../format';

export function StatusBadge({ status, suspect }: { status: RunStatus; suspect?: boolean }) {
  return (
    <span className="status-wrap">
      <span className={`badge status-${status}`} data-status={status}>
        {statusLabel(status)}
      </span>
      {suspect && (
        <span className="badge suspect" title="No heartbeat for more than one lease: the run may be stuck">
          ⚠ suspect
        </span>
      )}
    </span>
  );
}
