"""The local Neo4j: Neo4j 5.26 Community fetched by Maven and run as a real DBMS with Bolt.

Maven resolves the jars once (`neo4j-local/pom.xml`, cached in ~/.m2), a one-class launcher is
compiled once, and each start runs it as a detached JVM whose output goes to a log file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, ServiceUnavailable

from customer_graph.settings import PROJECT_ROOT, Settings

LAUNCHER_DIR = PROJECT_ROOT / "neo4j-local"
DIST_DIR = PROJECT_ROOT / ".local" / "neo4j-dist"

# JVMs started by this process, kept so that stop() can reap them (and no Popen is collected
# while its child still runs).
_children: dict[int, subprocess.Popen[bytes]] = {}


class LocalNeo4jError(RuntimeError):
    """The local Neo4j could not be set up, started or stopped."""


@dataclass(frozen=True)
class LocalNeo4j:
    """One local DBMS: its home folder (data, log, pid file) and its Bolt port."""

    home: Path
    port: int
    user: str
    password: str
    heap: str = "1g"
    pagecache_mb: int = 512

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalNeo4j:
        return cls(
            home=settings.local_neo4j_home,
            port=settings.local_neo4j_port,
            user=settings.neo4j_user,
            password=settings.neo4j_password,
            heap=settings.local_neo4j_heap,
            pagecache_mb=settings.local_neo4j_pagecache_mb,
        )

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / "neo4j.log"

    @property
    def ready_file(self) -> Path:
        return self.home / "ready"

    @property
    def pid_file(self) -> Path:
        return self.home / "neo4j.pid"

    def pid(self) -> int | None:
        """The pid of this home's JVM if it is alive, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"Neo4jLocal" not in cmdline.read_bytes():
            return None  # a recycled pid
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def is_ready(self) -> bool:
        """Bolt answers a query with our credentials."""
        if not _port_open(self.port):
            return False
        try:
            with GraphDatabase.driver(
                self.uri, auth=(self.user, self.password), connection_timeout=2
            ) as driver:
                driver.execute_query("RETURN 1")
        except (ServiceUnavailable, AuthError, OSError):
            return False
        return True

    def start(self, timeout: float = 180.0) -> bool:
        """Start the DBMS and wait until it is ready. Returns False if it was already running."""
        if self.is_running():
            self.wait_ready(timeout)
            return False
        if _port_open(self.port):
            raise LocalNeo4jError(
                f"port {self.port} is taken by another process; set "
                "CUSTOMER_GRAPH_LOCAL_NEO4J_PORT or NEO4J_URI"
            )
        classpath = ensure_distribution()
        self.home.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        env = {
            **os.environ,
            "NEO4J_LOCAL_BOLT_PORT": str(self.port),
            "NEO4J_USER": self.user,
            "NEO4J_PASSWORD": self.password,
            "NEO4J_LOCAL_PAGECACHE_MB": str(self.pagecache_mb),
        }
        java = shutil.which("java") or "java"
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed argument list
                [
                    java,
                    f"-Xmx{self.heap}",
                    "-XX:+UseG1GC",
                    "-cp",
                    classpath,
                    "Neo4jLocal",
                    str(self.home / "dbms"),
                    str(self.ready_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        _children[process.pid] = process
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LocalNeo4jError(f"Neo4j exited during start-up; see {self.log_file}")
            # The launcher writes the ready file once the password is set; trying to log in
            # before that would trip the server's authentication rate limit.
            if self.ready_file.exists() and self.is_ready():
                return True
            time.sleep(0.5)
        raise LocalNeo4jError(f"Neo4j was not ready after {timeout:.0f}s; see {self.log_file}")

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists() and self.is_ready():
                return
            if not self.is_running():
                raise LocalNeo4jError(f"Neo4j is not running; see {self.log_file}")
            time.sleep(0.5)
        raise LocalNeo4jError(f"Neo4j was not ready after {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the DBMS cleanly (SIGTERM runs its shutdown); False if it was not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not _wait_exit(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_exit(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        self.ready_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """Kill the JVM without a clean shutdown, as a crash would."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            _wait_exit(pid, 10)


def ensure_distribution() -> str:
    """Resolve the Neo4j jars (once) and compile the launcher (once); return the classpath."""
    DIST_DIR.mkdir(parents=True, exist_ok=True)
    cp_file = DIST_DIR / "classpath.txt"
    classes = DIST_DIR / "classes"
    pom = LAUNCHER_DIR / "pom.xml"
    source = LAUNCHER_DIR / "Neo4jLocal.java"
    if not cp_file.exists() or cp_file.stat().st_mtime < pom.stat().st_mtime:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalNeo4jError(
                "Maven (mvn) is needed to fetch Neo4j; install it or set NEO4J_URI"
            )
        _run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:build-classpath",
                f"-Dmdep.outputFile={cp_file}",
            ]
        )
    jars = cp_file.read_text().strip()
    compiled = classes / "Neo4jLocal.class"
    if not compiled.exists() or compiled.stat().st_mtime < source.stat().st_mtime:
        javac = shutil.which("javac")
        if javac is None:
            raise LocalNeo4jError("a JDK (javac) is needed to run the local Neo4j")
        classes.mkdir(exist_ok=True)
        _run([javac, "-d", str(classes), "-cp", jars, str(source)])
    return f"{classes}{os.pathsep}{jars}"


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise LocalNeo4jError(f"{argv[0]} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def _port_open(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_exit(pid: int, timeout: float) -> bool:
    child = _children.get(pid)
    if child is not None:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        del _children[pid]
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False
