"""A real uvicorn serving the app on a free port, and a runner for the Node scripts probing it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from customer_graph.settings import PROJECT_ROOT

STARTUP_TIMEOUT_S = 90.0
DRAIN_TIMEOUT_S = 60.0
NODE_MODULES = PROJECT_ROOT / "node_modules"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def live_server(**env: str) -> Iterator[str]:
    """Serve `customer_graph.app:app` with `env` added to the environment; yield its base URL
    once it is ready (Neo4j reachable, constraints in place)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "customer_graph.app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base, process, log)
            yield base
        finally:
            process.terminate()  # uvicorn drains the ingestion queue on SIGTERM
            try:
                process.wait(timeout=DRAIN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(base: str, process: subprocess.Popen[bytes], log: Any) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise AssertionError(f"uvicorn exited with {process.returncode}:\n{log.read()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    log.seek(0)
    raise AssertionError(f"uvicorn did not answer within {STARTUP_TIMEOUT_S}s:\n{log.read()}")


def run_node(script: Path, *args: str, stdin: object = None, timeout: float = 120) -> Any:
    """Run a Node script of the project and return the JSON it prints on stdout."""
    node = shutil.which("node")
    assert node, "Node.js 20 is needed for this test (see README, 'What they need')"
    assert NODE_MODULES.is_dir(), "node_modules is missing: run `npm ci` (make test does)"
    result = subprocess.run(
        [node, str(script), *args],
        cwd=PROJECT_ROOT,
        input=None if stdin is None else json.dumps(stdin),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stderr[-4000:]}"
    return json.loads(result.stdout)
