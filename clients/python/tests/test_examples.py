"""The Python recipes under examples/python/ are runnable documents: each runs as its own
process against the real server, exactly as a reader would run it, and asserts its own
claims, so a broken guarantee fails its run."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest

from support import PYTHON_ROOT, REPO, Server, clean_env

EXPECTED = {
    "01_agent_workflow.py": ["timed_out (no heartbeat", "recipe 1 ok"],
    "02_checkpoints.py": ["rewriting it is refused", "'diff_based': True", "verify ok=True", "recipe 2 ok"],
    "03_pipeline_ledger.py": ["misconfigured: no runledger server configured", "notes kept: Initial extraction run", "recipe 3 ok"],
    "04_compliance_checks.py": ["import: inserted 4, skipped by cutover 1; re-run inserted 0", "recipe 4 ok"],
    "05_execution_ids.py": ["weeks missing an execution id: 2026-W03", "recipe 5 ok"],
}


def test_every_recipe_is_tested() -> None:
    assert sorted(p.name for p in (REPO / "examples" / "python").glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("recipe", sorted(EXPECTED))
def test_recipe(recipe: str, server: Server) -> None:
    # Each recipe in a namespace of its own, as on a shared server.
    env = clean_env({"RUNLEDGER_SERVER": server.url, "RUNLEDGER_NAMESPACE": f"recipe-{secrets.token_hex(4)}", "PYTHONPATH": str(PYTHON_ROOT)})
    res = subprocess.run([sys.executable, str(REPO / "examples" / "python" / recipe)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    for text in EXPECTED[recipe]:
        assert text in res.stdout, res.stdout
