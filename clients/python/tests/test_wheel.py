"""The package builds offline (no index: only the system's setuptools and wheel), and the
wheel works as users install it: imported from the wheel alone, against a real server."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from support import BACKEND, PYTHON_ROOT, Server


@pytest.mark.skipif(BACKEND == "postgres", reason="the wheel does not depend on the backend: built once, in the pglite pass")
def test_the_wheel_builds_offline_and_works_installed(server: Server) -> None:
    with tempfile.TemporaryDirectory(prefix="runledger-wheel-") as tmp:
        # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
        src = Path(tmp) / "src"
        shutil.copytree(PYTHON_ROOT, src, ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info", ".pytest_cache"))
        out = Path(tmp) / "dist"
        env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CONFIG_FILE": os.devnull}
        build = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", str(out), str(src)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert build.returncode == 0, build.stdout + build.stderr
        [wheel] = list(out.glob("runledger-0.1.0-py3-none-any.whl"))

        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            assert {"runledger/__init__.py", "runledger/py.typed", "runledger/client.py", "runledger/webhooks.py"} <= names
            assert not any(n.startswith("tests/") for n in names)
            meta = email.message_from_bytes(zf.read("runledger-0.1.0.dist-info/METADATA"))
            assert meta["Requires-Python"] == ">=3.9"
            assert meta.get_all("Requires-Dist") is None  # standard library only
            site = Path(tmp) / "site"
            zf.extractall(site)

        # Installed: only the wheel's files on the path (-I ignores the environment and user site).
        script = (
            "import sys; sys.path.insert(0, sys.argv[1]); import runledger; "
            "assert runledger.__file__.startswith(sys.argv[1]), runledger.__file__; "
            "c = runledger.Client(sys.argv[2]); "
            "run = c.start_run('from-wheel'); run.event('hello', {'n': 1}); print(run.complete({'ok': True})['status'])"
        )
        used = subprocess.run([sys.executable, "-I", "-c", script, str(site), server.url], capture_output=True, text=True, timeout=120)
        assert used.returncode == 0, used.stderr
        assert used.stdout.strip() == "completed"
