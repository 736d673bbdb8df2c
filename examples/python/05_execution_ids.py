"""Recipe 5 — external execution ids (the collection service's story, a FastAPI app).

The team's execution_id from the remote API was dropped somewhere between the call and
the database update. Here a collection run has one child run per week; each week records
the remote execution id the moment the call returns (write-once), and the weeks still
missing one can be listed with a filter.

    RUNLEDGER_SERVER=http://127.0.0.1:7070 python3 examples/python/05_execution_ids.py
"""

import sys
import time
from pathlib import Path
from typing import Dict, Optional

try:
    from runledger import Client, KeyConflictError
except ImportError:  # not installed: this checkout's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
    from runledger import Client, KeyConflictError

client = Client()
collection_id = f"collection-{time.time_ns()}"


def create_workflow_execution(week: str) -> Optional[Dict[str, str]]:
    """Stands in for the remote API: returns an execution id, except for one week where it fails."""
    return None if week.endswith("W03") else {"executionId": f"amc-exec-{week}-{collection_id}"}


collection = client.start_run("historical-collection", "instance-9", id=collection_id)
weeks = ["2026-W01", "2026-W02", "2026-W03", "2026-W04"]

for week in weeks:
    child = client.start_run("week-collection", week, parent_id=collection.id, params={"week": week})
    result = create_workflow_execution(week)
    if result:
        # Recorded as soon as the remote call returns: nothing in between can drop it.
        child.set_external_ids({"amc.executionId": result["executionId"]})
        child.complete({"rows": 100})
    else:
        child.fail({"type": "remote_error", "message": f"no execution id returned for {week}"})

# Write-once: the same value again is a no-op, another value is refused.
w01 = f"amc-exec-2026-W01-{collection_id}"
[first] = client.list_runs(parent_id=collection.id, external_id=("amc.executionId", w01))
client.run(first["id"]).set_external_ids({"amc.executionId": w01})
try:
    client.run(first["id"]).set_external_ids({"amc.executionId": "something-else"})
    raise AssertionError("an external id must be write-once")
except KeyConflictError as err:
    print(f"overwriting an execution id is refused: {err}")

# Which weeks are missing an execution id?
missing = list(client.list_runs(parent_id=collection.id, missing_external_id="amc.executionId"))
print(f"weeks missing an execution id: {', '.join(str(r['subject']) for r in missing)}")
assert [r["subject"] for r in missing] == ["2026-W03"]

# Search by the remote id finds the week.
[found] = client.list_runs(external_id=("amc.executionId", f"amc-exec-2026-W02-{collection_id}"))
assert found["subject"] == "2026-W02"

children = list(client.list_runs(parent_id=collection.id))
collection.complete(statistics={"weeks": len(children), "missingExecutionIds": len(missing)})
client.close()
print("recipe 5 ok")
