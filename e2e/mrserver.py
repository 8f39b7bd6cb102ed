"""The real model-registry binary on a fresh database per backend, for the e2e suites (conftest.py
here, and e2e/mlflow/conftest.py, whose venv has no Kubeflow client). See conftest.py for the
environment variables.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ALL_BACKENDS = ("sqlite", "mysql", "postgres")
BACKENDS = tuple(
    b.strip() for b in os.environ.get("MR_E2E_BACKENDS", ",".join(ALL_BACKENDS)).split(",") if b.strip()
)
for _b in BACKENDS:
    if _b not in ALL_BACKENDS:
        raise pytest.UsageError(f"MR_E2E_BACKENDS: unknown backend {_b!r} (known: {', '.join(ALL_BACKENDS)})")

READY_TIMEOUT = float(os.environ.get("MR_E2E_READY_TIMEOUT", "30"))
KEEP = os.environ.get("MR_E2E_KEEP") == "1"

# The environment the server is started with: ours as it was, without MR_* (the server reads its
# configuration from MR_* variables; the tests pass everything as flags).
# A transaction pooler (PgBouncer) in front of PostgreSQL: the server is given it, in its pooler mode.
POOLER_DSN = os.environ.get("MR_TEST_POSTGRES_POOLER_DSN", "").strip()
SERVER_ENV = {k: v for k, v in os.environ.items() if not k.startswith("MR_")}
SERVER_ENV.setdefault("RUST_LOG", "info")

# Speed: the client builds a new ssl.SSLContext for every request, even over plain http, and
# loading the system CA store costs ~85 ms each time (10x the request). The suite only speaks
# http to 127.0.0.1, so point OpenSSL's default paths at nothing for this (test) process.
os.environ["SSL_CERT_FILE"] = os.devnull
os.environ["SSL_CERT_DIR"] = os.devnull


class MRServer(tuple):
    """A running server: unpacks as `(host, port)`; also `.backend`, `.base_url`, `.api_url`, `.log_path`."""

    def __new__(cls, host: str, port: int, **extra):
        obj = super().__new__(cls, (host, port))
        obj.__dict__.update(extra)
        return obj

    @property
    def host(self) -> str:
        return self[0]

    @property
    def port(self) -> int:
        return self[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError as e:
            return f"<no server log: {e}>"
        kept = [ln for ln in text.splitlines() if "running migration" not in ln]
        return "\n".join(kept[-lines:])


# --------------------------------------------------------------------------- databases


def _admin_url(var: str, default: str) -> urllib.parse.SplitResult:
    return urllib.parse.urlsplit(os.environ.get(var) or default)


def _run_admin(cmd: list[str], what: str, env: dict | None = None) -> None:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    except FileNotFoundError as e:
        pytest.fail(f"{what}: client program not found ({e}); the e2e suite needs it", pytrace=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: timed out after 60 s: {' '.join(cmd)}", pytrace=False)
    if r.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {r.returncode}) - is the database server up?\n"
            f"command: {' '.join(cmd)}\nstdout: {r.stdout}\nstderr: {r.stderr}",
            pytrace=False,
        )


class _Database:
    """A fresh database for one server: create() -> the server's (type, dsn); drop()."""

    def __init__(self, backend: str, workdir: Path):
        self.backend = backend
        self.workdir = workdir
        self.name = "mre2e_" + uuid.uuid4().hex[:12]
        self.created = False

    def _mysql(self, sql: str, what: str) -> None:
        u = _admin_url("MR_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test")
        cmd = ["mysql", "--protocol=tcp", "-h", u.hostname or "127.0.0.1", "-P", str(u.port or 3306),
               "-u", urllib.parse.unquote(u.username or "root"), "--batch", "-e", sql]
        env = dict(os.environ)
        if u.password:
            env["MYSQL_PWD"] = urllib.parse.unquote(u.password)
        _run_admin(cmd, what, env)

    def _psql(self, sql: str, what: str) -> None:
        u = _admin_url("MR_TEST_POSTGRES_DSN", "postgres://root@127.0.0.1:5432/test")
        cmd = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432),
               "-U", urllib.parse.unquote(u.username or "root"), "-d", "postgres", "-Atc", sql]
        env = dict(os.environ)
        if u.password:
            env["PGPASSWORD"] = urllib.parse.unquote(u.password)
        _run_admin(cmd, what, env)

    def create(self) -> tuple[str, str]:
        if self.backend == "sqlite":
            self.created = True
            return "sqlite", str(self.workdir / "model-registry.db")
        if self.backend == "mysql":
            self._mysql(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4", f"MariaDB: create database {self.name}")
            self.created = True
            u = _admin_url("MR_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test")
            user = urllib.parse.unquote(u.username or "root")
            pw = urllib.parse.unquote(u.password or "")
            # upstream's documented Go DSN form, as an operator would pass it
            return "mysql", (f"{user}:{pw}@tcp({u.hostname or '127.0.0.1'}:{u.port or 3306})/{self.name}"
                             "?charset=utf8mb4&parseTime=True&loc=Local")
        if self.backend == "postgres":
            self._psql(f'CREATE DATABASE "{self.name}"', f"PostgreSQL: create database {self.name}")
            self.created = True
            u = _admin_url("MR_TEST_POSTGRES_DSN", "postgres://root@127.0.0.1:5432/test")
            netloc = u.netloc.rsplit("@", 1)[0] + "@" if "@" in u.netloc else ""
            host = f"{u.hostname or '127.0.0.1'}:{u.port or 5432}"
            if POOLER_DSN:  # the server goes through the transaction pooler in front of it
                p = urllib.parse.urlparse(POOLER_DSN)
                host = f"{p.hostname or '127.0.0.1'}:{p.port or 6432}"
            return "postgres", f"postgres://{netloc}{host}/{self.name}"
        raise AssertionError(self.backend)

    def drop(self) -> None:
        if not self.created or KEEP:
            return
        if self.backend == "mysql":
            self._mysql(f"DROP DATABASE IF EXISTS `{self.name}`", f"MariaDB: drop database {self.name}")
        elif self.backend == "postgres":
            self._psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)', f"PostgreSQL: drop database {self.name}")


# --------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(host: str, port: int) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/readyz/health", timeout=2) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return None, str(e)


def _server_bin() -> str:
    b = os.path.abspath(os.environ.get("MR_BIN") or str(REPO / "target" / "debug" / "model-registry"))
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail(f"server binary {b} not found or not executable: run `cargo build -p model-registry` "
                    "or set MR_BIN", pytrace=False)
    return b


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class _Instance:
    """One server process on one fresh database; `args`: more flags for it."""

    def __init__(self, backend: str, label: str, args: tuple[str, ...] = ()):
        self.backend = backend
        self.args = list(args)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"mre2e-{backend}-"))
        self.db = _Database(backend, self.workdir)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "server.log"
        self.label = label

    def start(self) -> MRServer:
        binary = _server_bin()
        db_type, dsn = self.db.create()
        host = "127.0.0.1"
        last_err = ""
        for attempt in range(3):  # a free port can be taken between probing and binding: retry
            port = _free_port()
            with open(self.log_path, "ab") as log:
                log.write(f"=== e2e: attempt {attempt + 1}: {binary} proxy on {host}:{port}, "
                          f"{db_type} {dsn}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(
                    [binary, "proxy", "--hostname", host, "--port", str(port),
                     "--embedmd-database-type", db_type, "--embedmd-database-dsn", dsn]
                    + (["--embedmd-database-pooler", "transaction"] if POOLER_DSN and db_type == "postgres" else [])
                    + self.args,
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    cwd=self.workdir, env=SERVER_ENV,
                )
            deadline = time.monotonic() + READY_TIMEOUT
            status, body = None, ""
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                status, body = _health(host, port)
                if status == 200:
                    return MRServer(host, port, backend=self.backend, log_path=str(self.log_path), dsn=dsn)
                time.sleep(0.1)
            exited = self.proc.poll()
            _stop(self.proc)
            log_text = self.log_path.read_text(errors="replace")
            last_err = (f"model-registry ({self.backend}, {self.label}) not ready after "
                        f"{READY_TIMEOUT:.0f} s" if exited is None else
                        f"model-registry ({self.backend}, {self.label}) exited with {exited} before it was ready")
            last_err += f"; last /readyz/health: {status} {body!r}\n--- server log ---\n{log_text[-8000:]}"
            if exited is None or "in use" not in log_text.lower():
                break  # only an address-in-use exit is retried on another port
        pytest.fail(last_err, pytrace=False)

    def stop(self) -> None:
        try:
            if self.proc is not None:
                _stop(self.proc)
        finally:
            try:
                self.db.drop()
            finally:
                if not KEEP:
                    shutil.rmtree(self.workdir, ignore_errors=True)
