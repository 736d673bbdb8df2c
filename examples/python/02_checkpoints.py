"""Recipe 2 — checkpoints that survive a restart (the planning service's story).

The service added diff metadata to a checkpoint after it had been persisted, so the
metadata lived only in memory and was gone after a restart. A runledger checkpoint is
written once, whole, with a content hash; it cannot be mutated afterwards. Here a second
process (the "restarted" service) reads it back and verifies it.

    RUNLEDGER_SERVER=http://127.0.0.1:7070 python3 examples/python/02_checkpoints.py
"""

import hashlib
import subprocess
import sys
from pathlib import Path

try:
    from runledger import Client, KeyConflictError
except ImportError:  # not installed: this checkout's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
    from runledger import Client, KeyConflictError

DIFF_PATHS = ["src/plan.py", "src/decide.py"]
# Compute the diff manifest BEFORE writing: the checkpoint is stored in one piece.
DIFF_HASH = hashlib.sha256("\n".join(DIFF_PATHS).encode()).hexdigest()
METADATA = {"decisionId": "d-3", "diff_paths": DIFF_PATHS, "diff_based": True, "diff_hash": DIFF_HASH}


def after_restart(run_id: str) -> None:
    """The service after a restart: nothing in memory, only the ledger."""
    client = Client()
    back = client.run(run_id).get_checkpoint("pre_decision")
    assert back["metadata"] == METADATA, back["metadata"]
    verdict = client.verify(run_id)
    assert verdict["ok"] is True, verdict
    print(f"after restart: metadata {back['metadata']}; verify ok={verdict['ok']}")
    client.run(run_id).complete({"decision": "apply"})


if len(sys.argv) > 2 and sys.argv[1] == "--after-restart":
    after_restart(sys.argv[2])
    sys.exit(0)

client = Client()
run = client.start_run("plan-execution", "plan-17", trigger="decision")
stored = run.checkpoint("pre_decision", METADATA, kind="workspace_snapshot", ref="sandbox://plan-17")
print(f"checkpoint {stored.checkpoint['name']} stored with content hash {stored.checkpoint['contentHash']}")

# Trying to change it later is refused, not silently lost.
try:
    run.checkpoint("pre_decision", {"decisionId": "d-3"}, kind="workspace_snapshot", ref="sandbox://plan-17")
    raise AssertionError("a checkpoint must not be overwritten")
except KeyConflictError as err:
    assert err.code == "key_conflict"
    print(f"rewriting it is refused: {err}")

# The service restarts: a new process, with nothing carried over but the run id.
subprocess.run([sys.executable, __file__, "--after-restart", run.id], check=True)
assert client.get_run(run.id)["status"] == "completed"
print("recipe 2 ok")
