"""Real parts for the tests: `runledger serve` as a subprocess on a fresh store of the
selected backend (RUNLEDGER_TEST_DB=pglite: a temporary data directory; postgres: a fresh
schema, dropped afterwards), and a TCP proxy that can swallow answers.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[3]
PYTHON_ROOT = REPO / "clients" / "python"
BACKEND = os.environ.get("RUNLEDGER_TEST_DB", "pglite")
PG_URL = os.environ.get("RUNLEDGER_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
NODE = shutil.which("node") or "node"


def cli_argv() -> List[str]:
    """The built CLI when RUNLEDGER_TEST_CLI=dist (as `npm test` runs it), else the sources through tsx."""
    if os.environ.get("RUNLEDGER_TEST_CLI") == "dist":
        return [NODE, str(REPO / "dist" / "cli" / "main.js")]
    return [NODE, "--import", str(REPO / "node_modules" / "tsx" / "dist" / "loader.mjs"), str(REPO / "src" / "cli" / "main.ts")]


def clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLEDGER_") and k != "DATABASE_URL"}
    env.update(extra or {})
    return env


class Store:
    """A fresh store on the selected backend; `args` select it on the CLI."""

    def __init__(self) -> None:
        self.schema: Optional[str] = None
        self.data_dir: Optional[str] = None
        if BACKEND == "postgres":
            self.schema = f"t_py_{secrets.token_hex(6)}"
            self.args = ["--database-url", PG_URL, "--schema", self.schema]
        else:
            self.data_dir = tempfile.mkdtemp(prefix="runledger-py-")
            self.args = ["--data-dir", self.data_dir]

    def cli(self, *args: str) -> str:
        """A CLI command on the store itself (no server); its stdout."""
        res = subprocess.run([*cli_argv(), *self.args, *args], cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"runledger {' '.join(args)} failed ({res.returncode}): {res.stderr}")
        return res.stdout

    def cleanup(self) -> None:
        if self.schema:
            subprocess.run(["psql", PG_URL, "-q", "-c", f'drop schema if exists "{self.schema}" cascade'], check=True, capture_output=True)
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class Server:
    """`runledger serve` on a store; restart() brings it back on the same port."""

    def __init__(self, store: Store, *flags: str) -> None:
        self.store = store
        self.flags = list(flags)
        self.port = 0
        self.url = ""
        self.proc: Optional[subprocess.Popen[str]] = None
        self.output: List[str] = []

    def start(self) -> "Server":
        argv = [*cli_argv(), *self.store.args, "serve", "--port", str(self.port), "--log-level", "warn", *self.flags]
        proc = subprocess.Popen(argv, cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.proc = proc
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def drain() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.output.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, daemon=True).start()
        while True:
            line = lines.get(timeout=120)
            if line is None:
                raise RuntimeError(f"runledger serve exited ({proc.wait()}) before listening: {''.join(self.output)}")
            m = re.search(r"runledger listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
                return self

    def stop(self) -> int:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else 0
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> "Server":
        self.stop()
        return self.start()

    def cli(self, *args: str, input: Optional[str] = None) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        """A CLI command through this server."""
        return subprocess.run(
            [*cli_argv(), "--server", self.url, *args], cwd=REPO, env=clean_env(), input=input, capture_output=True, text=True, timeout=120
        )


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


class FaultyProxy:
    """A loopback TCP proxy. drop_responses(n): the next n answers are swallowed and the
    connection is closed instead (the server did the work, the client never hears back)."""

    def __init__(self, target_url: str, port: int = 0) -> None:
        host, target_port = target_url.split("//", 1)[1].rsplit(":", 1)
        self.target = (host, int(target_port))
        self.requests: List[str] = []
        self._drop = 0
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_responses(self, n: int) -> None:
        with self._lock:
            self._drop = n

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, is_request: bool) -> None:
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if is_request:
                    m = re.match(rb"^(GET|POST|PATCH|PUT|DELETE) \S+", chunk)
                    if m:
                        with self._lock:
                            self.requests.append(m.group(0).decode("latin-1"))
                else:
                    with self._lock:
                        swallow = self._drop > 0
                        if swallow:
                            self._drop -= 1
                    if swallow:
                        break
                dst.sendall(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def cut_all(self) -> None:
        """Closes every open connection now, as a server closing idle keep-alive connections does."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def count(self, prefix: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.startswith(prefix))

    def close(self) -> None:
        self._listener.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass


def run_node(script: str, args: Sequence[str] = (), input: Optional[str] = None) -> str:
    """Runs a node script from the repository root (for the npm reference packages)."""
    res = subprocess.run([NODE, "-e", script, *args], cwd=REPO, input=input, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"node failed ({res.returncode}): {res.stderr}")
    return res.stdout
