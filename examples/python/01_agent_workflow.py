"""Recipe 1 — agent workflow snapshots, from Python workers (the Temporal team's story).

The team's complete_run() updated snapshots by (owner, repo) with no run id, so two runs
for one repository overwrote each other, and a worker that died never completed. Here
every write names one run, completion is one call that stores output and statistics
together, and a run whose worker stops heartbeating is timed out by the reaper instead of
staying "running" forever.

    runledger serve &                     # http://127.0.0.1:7070
    RUNLEDGER_SERVER=http://127.0.0.1:7070 python3 examples/python/01_agent_workflow.py
"""

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    from runledger import Client, TrackedRun
except ImportError:  # not installed: this checkout's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
    from runledger import Client, TrackedRun

client = Client()  # RUNLEDGER_SERVER; without it, a ConfigurationError says so
repo = f"acme/api-{time.time_ns()}"  # a fresh subject, so the recipe can run again


def agent_workflow(flavour: str, workflow_id: str, trigger: str) -> str:
    # The Temporal workflow id is recorded at the start: it cannot be lost later in the call chain.
    with client.track(job="agent-md", subject=repo, trigger=trigger, external_ids={"temporal.workflowId": workflow_id}) as run:
        assert isinstance(run, TrackedRun)
        for step in ("clone", "analyse", "write"):
            run.event("agent.step", {"step": step, "flavour": flavour})
        run.output = {"agentMd": f"# AGENTS.md ({flavour})"}
        run.statistics = {"inputTokens": len(flavour) * 1000, "outputTokens": 420}
        return run.id


# Two workflow runs for the same repository, at the same time.
with ThreadPoolExecutor(2) as pool:
    a_id, b_id = pool.map(agent_workflow, ["first", "second"], [f"wf-a-{repo}", f"wf-b-{repo}"], ["manual", "schedule"])

# Each kept its own output: nothing was updated by (owner, repo).
run_a, run_b = client.get_run(a_id), client.get_run(b_id)
assert run_a["output"] == {"agentMd": "# AGENTS.md (first)"}, run_a["output"]
assert run_b["output"] == {"agentMd": "# AGENTS.md (second)"}, run_b["output"]
print(f"run {a_id}: {run_a['status']}, {run_a['statistics']}")
print(f"run {b_id}: {run_b['status']}, {run_b['statistics']}")

# A worker that dies: it starts a run with a 1 s lease and is never heard from again
# (a killed process sends no more heartbeats; here we simply stop).
orphan = client.start_run("agent-md", repo, trigger="manual", lease_s=1)
time.sleep(2.2)  # past 2 × lease
deadline = time.monotonic() + 60
while client.get_run(orphan.id)["status"] == "running":  # `runledger serve` reaps every few seconds
    assert time.monotonic() < deadline, "the orphan was never timed out"
    client.reap()
    time.sleep(0.2)
dead = client.get_run(orphan.id)
assert dead["status"] == "timed_out"
assert dead["error"] is not None and dead["error"].get("type") == "lease_expired"
print(f"run {orphan.id}: {dead['status']} (no heartbeat: {dead['error'].get('message')})")

# Status and output are read from one place: the run, and the subject's current status.
subject = client.get_subject("agent-md", repo)
print(f"subject {repo}: current {subject['status']} from run {subject['runId']}; {len(subject['recentRuns'])} runs")
assert len(subject["recentRuns"]) == 3

# A workflow that raises is failed with its traceback, and the exception still propagates.
try:
    with client.track(job="agent-md", subject=repo, trigger="manual") as run:
        raise TimeoutError("model did not answer")
except TimeoutError:
    failed = client.get_run(run.id)
    assert failed["status"] == "failed" and failed["error"] is not None
    print(f"run {run.id}: {failed['status']} ({failed['error'].get('type')}: {failed['error'].get('message')})")

client.close()
print("recipe 1 ok")
