"""Recipe 3 — a pipeline's runs ledger (the extraction team's story).

The team's mark_run_started()/mark_run_finished() helpers wrote their own runs table with
psycopg. They needed a start that can be retried, a finish that keeps the notes when it
has none, and a clear failure when no database was configured: their helper returned
silently and the runs were never recorded. With the client, the helpers are two lines
each, and @client.tracked wraps a whole step as a run.

    RUNLEDGER_SERVER=http://127.0.0.1:7070 python3 examples/python/03_pipeline_ledger.py
"""

import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

try:
    from runledger import Client, ConfigurationError
except ImportError:  # not installed: this checkout's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
    from runledger import Client, ConfigurationError

# 1. A missing configuration is a clear error, not a silent no-op.
saved = os.environ.pop("RUNLEDGER_SERVER")
try:
    Client()
    raise AssertionError("expected a configuration error")
except ConfigurationError as err:
    print(f"misconfigured: {err}")
os.environ["RUNLEDGER_SERVER"] = saved

client = Client()


def mark_run_started(run_id: str, book: str, notes: str) -> bool:
    """True when this call created the run; a retried call finds the same run."""
    return client.start_run("extract", book, id=run_id, notes=notes).created


def mark_run_finished(run_id: str, output: Dict[str, Any], notes: Optional[str] = None) -> None:
    client.run(run_id).complete(output, notes=notes)


# 2. Start is idempotent on the run id: a retried step gets the same run, not a second one.
run_id = f"genesis-{int(time.time())}-{os.getpid()}"
assert mark_run_started(run_id, "Genesis", "Initial extraction run") is True
assert mark_run_started(run_id, "Genesis", "Initial extraction run") is False
print(f"started {run_id} (twice, one run)")
client.run(run_id).event("progress", {"nouns": 150})

# 3. Finishing without notes keeps the notes written at the start.
mark_run_finished(run_id, {"nouns": 150})
notes = client.get_run(run_id)["notes"]
assert notes == "Initial extraction run", notes
print(f"completed {run_id}; notes kept: {notes}")

# 4. A whole step as a run: its return value is the output; an exception fails the run
#    (type, message, traceback) and still propagates to the caller.
book_tag = f"{int(time.time())}-{os.getpid()}"


@client.tracked(job="extract", subject=lambda book, run=None: f"{book}-{book_tag}")
def extract(book: str, run: Any = None) -> Dict[str, Any]:
    run.event("log", f"extracting {book}")
    if book == "Leviticus":
        raise FileNotFoundError(f"source file missing: {book}.txt")
    return {"nouns": 120}


assert extract("Exodus") == {"nouns": 120}
try:
    extract("Leviticus")
    raise AssertionError("the step should have raised")
except FileNotFoundError as err:
    print(f"a failing step raises: {err}")
failed = [r for r in client.list_runs(job="extract", status="failed") if r["subject"] == f"Leviticus-{book_tag}"]
assert len(failed) == 1 and failed[0]["error"] is not None
print(f"and its run is failed: {failed[0]['id']} {failed[0]['error'].get('type')}: {failed[0]['error'].get('message')}")

client.close()
print("recipe 3 ok")
