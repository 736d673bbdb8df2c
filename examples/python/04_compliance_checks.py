"""Recipe 4 — compliance checks with one canonical history (the compliance team's story).

The team wrote owner-triggered tests to two tables that drifted apart, then needed a
backfill that was idempotent, chunked, dry-run first, guarded against the dual-write
window, and a rule for which verdict is "current". Here:
  - heartbeat and owner-triggered checks are runs of one job; the current status per agent
    is derived on the server by the freshness rule;
  - the legacy table's CSV export is backfilled through the client: a dry run first, the
    cutover guard on, then the real import, then a re-run that inserts nothing.

    RUNLEDGER_SERVER=http://127.0.0.1:7070 python3 examples/python/04_compliance_checks.py
"""

import csv
import io
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

try:
    from runledger import Client
except ImportError:  # not installed: this checkout's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
    from runledger import Client

client = Client()
tag = format(time.time_ns(), "x")
agents = {name: f"https://{name}-{tag}.example/mcp" for name in ("alpha", "beta", "gamma")}


def check(agent: str, trigger: str, passed: bool) -> Dict[str, Any]:
    run = client.start_run("compliance-check", agent, trigger=trigger, actor="u1" if trigger == "owner_test" else None)
    statistics = {"storyboardsPassing": 30 if passed else 12, "storyboardsTotal": 30}
    if passed:
        return run.complete(statistics=statistics)
    return run.fail({"type": "storyboards_failing", "message": "18 of 30 failing"}, statistics=statistics)


# Step 1: live checks through the canonical path.
live = check(agents["alpha"], "owner_test", True)  # the first live owner run: the cutover point for owner_test
check(agents["alpha"], "heartbeat", True)
check(agents["beta"], "heartbeat", False)
alpha_now = client.get_subject("compliance-check", agents["alpha"])
print(f"live: alpha {alpha_now['status']} ({alpha_now['trigger']}), beta {client.get_subject('compliance-check', agents['beta'])['status']}")

# Step 2: the legacy table's export (owner tests), including the dual write of the live run.
export = io.StringIO()
writer = csv.writer(export)
writer.writerow(["id", "agent_url", "user_id", "passed", "score", "started_at", "finished_at"])
writer.writerows(
    [
        [f"{tag}-1", agents["alpha"], "u1", "f", 40, "2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z"],
        [f"{tag}-2", agents["alpha"], "u1", "t", 90, "2026-01-02T12:00:00Z", "2026-01-02T13:00:00Z"],
        [f"{tag}-3", agents["beta"], "u2", "t", 80, "2026-01-03T12:00:00Z", "2026-01-03T13:00:00Z"],
        [f"{tag}-4", agents["gamma"], "u3", "f", 10, "2026-01-04T12:00:00Z", "2026-01-04T13:00:00Z"],
        [f"{tag}-5", agents["alpha"], "u1", "t", 95, live["startedAt"], live["finishedAt"]],  # the dual write
    ]
)


def records(text: str) -> List[Dict[str, Any]]:
    """Legacy rows → import records: the row id is the idempotency key (source, sourceId)."""
    return [
        {
            "sourceId": row["id"],
            "job": "compliance-check",
            "subject": row["agent_url"],
            "trigger": "owner_test",
            "actor": row["user_id"],
            "status": "completed" if row["passed"] == "t" else "failed",
            "startedAt": row["started_at"],
            "finishedAt": row["finished_at"],
            "statistics": {"score": int(row["score"])},
        }
        for row in csv.DictReader(io.StringIO(text))
    ]


rows = records(export.getvalue())


def backfill(dry_run: bool = False) -> Dict[str, int]:
    totals = {"inserted": 0, "duplicates": 0, "skippedCutover": 0, "invalid": 0}
    for start in range(0, len(rows), 2):  # chunks: short transactions on the server
        result = client.import_runs("agent_test_history", rows[start : start + 2], dry_run=dry_run, cutover="auto")
        for k in totals:
            totals[k] += result[k]
    return totals


# Step 3: dry run first, then the real import, then a re-run.
dry = backfill(dry_run=True)
print(f"dry run: {dry}")
assert (dry["inserted"], dry["skippedCutover"]) == (4, 1), dry  # the dual-write row is at the first live owner run
real = backfill()
assert real == dry, (real, dry)  # the dry run told the truth
rerun = backfill()
assert rerun["inserted"] == 0 and rerun["duplicates"] == 4, rerun
print(f"import: inserted {real['inserted']}, skipped by cutover {real['skippedCutover']}; re-run inserted {rerun['inserted']}")

# Step 4: one canonical history per agent, and a current status decided by freshness.
alpha = client.get_subject("compliance-check", agents["alpha"])
assert alpha["runId"] == alpha_now["runId"]  # old history never displaces the fresher live verdict
gamma = client.get_subject("compliance-check", agents["gamma"])
assert gamma["status"] == "failed"  # an agent with no live run gets its latest imported verdict
history = list(client.list_runs(job="compliance-check", subject=agents["alpha"]))
print("alpha history: " + ", ".join(f"{r['trigger']}:{r['status']}{' (imported)' if r['source'] else ''}" for r in history))
assert len(history) == 4  # 2 live + 2 backfilled (the dual-write duplicate was skipped)
assert client.verify()["ok"] is True
client.close()
print("recipe 4 ok")
