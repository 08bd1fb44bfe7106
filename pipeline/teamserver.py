"""A team MLflow server: PostgreSQL as the backend store, a local folder as the artifact store, both on loopback.

:class:`Postgres` runs a private PostgreSQL cluster (``initdb`` on first use) from the Debian binaries; it refuses
to run as root, so as root every PostgreSQL command runs as the ``postgres`` user, which then owns the data
folder. :class:`MlflowServer` runs ``mlflow server`` against it and waits for ``/health``. ``make server`` and the
integration tests use both.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InputError

PG_ROOTS = ("/usr/lib/postgresql",)
POSTGRES_USER = "postgres"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bindir() -> Path:
    """Folder of ``initdb``, ``pg_ctl``, ``psql``: ``$PG_BINDIR``, the newest ``/usr/lib/postgresql/*/bin``, or
    the PATH (only when ``pg_ctl`` and ``psql`` sit together: Debian's PATH wrappers do not include ``initdb``)."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    versions = sorted((p for root in PG_ROOTS for p in Path(root).glob("*/bin") if (p / "pg_ctl").exists()),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    if found and (Path(found).parent / "psql").exists():
        return Path(found).parent
    raise InputError("PostgreSQL not found: install it (Debian: apt-get install postgresql) or set PG_BINDIR")


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses root: as root, run ``command`` as the ``postgres`` user."""
    return ["runuser", "-u", POSTGRES_USER, "--", *command] if os.geteuid() == 0 else command


@dataclass
class Postgres:
    """A private PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port`` (trust auth, loopback only)."""

    data_dir: Path
    port: int
    user: str = "mlflow"
    database: str = "mlflow"
    bindir: Path = field(default_factory=postgres_bindir)

    @property
    def uri(self) -> str:
        """SQLAlchemy URI of the database (psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *command: str) -> None:
        result = subprocess.run(_as_postgres_user([str(self.bindir / command[0]), *command[1:]]),
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip() or result.stdout}")

    def start(self) -> Postgres:
        """Create the cluster on first use, start it and create the database; returns self."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, POSTGRES_USER, POSTGRES_USER)
        self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", self.user, "-E", "UTF8")
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.data_dir / "server.log"),
                  "-w", "-t", "60", "start")
        exists = subprocess.run(
            [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "postgres",
             "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
            capture_output=True, text=True, timeout=60,
        ).stdout.strip()
        if exists != "1":
            subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                            self.database], check=True, capture_output=True, timeout=60)
        return self

    def stop(self) -> None:
        """Fast shutdown (running transactions are rolled back); a stopped cluster is left alone."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")


@dataclass
class MlflowServer:
    """``mlflow server`` on ``host``:``port`` with ``backend_uri`` and a local artifact folder (proxied uploads)."""

    backend_uri: str
    artifacts_dir: Path
    port: int
    host: str = "127.0.0.1"
    command: str = "server"  # or "ui": the same server, as a user starts it to browse a local store
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, *, timeout: float = 180.0, log: Path | None = None) -> MlflowServer:
        """Start the server and wait until ``/health`` answers (the first start runs database migrations)."""
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mlflow", self.command, "--backend-store-uri", self.backend_uri,
                   "--artifacts-destination", str(self.artifacts_dir.resolve()), "--host", self.host,
                   "--port", str(self.port), "--workers", "1"]
        output = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode} (see {log or 'its output'})")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server on {self.url} did not become healthy within {timeout:.0f} s")

    def stop(self) -> None:
        """Terminate the server and its workers (its own process group)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
