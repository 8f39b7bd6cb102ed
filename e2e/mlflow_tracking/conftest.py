"""The real model-registry binary for MLflow's client: a fresh database per backend (SQLite,
MariaDB, PostgreSQL), artifacts in a temporary directory or in a bucket of a moto S3 server that
this suite starts on 127.0.0.1 (ports 15300-15399). An unreachable database is an error, never a
skip.

Environment: MR_BIN (default <repo>/target/debug/model-registry), MR_E2E_BACKENDS (subset of
sqlite,mysql,postgres), MR_TEST_MYSQL_DSN / MR_TEST_POSTGRES_DSN (admin URLs, defaults
mysql://root@127.0.0.1:3306 and postgres://root@127.0.0.1:5432/test).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BACKENDS = [b for b in os.environ.get("MR_E2E_BACKENDS", "sqlite,mysql,postgres").split(",") if b]
PORTS = range(15320, 15400)
MOTO_PORT = 15310
READY_TIMEOUT = 30


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 15320-15399")


def admin(backend: str, sql: str) -> None:
    if backend == "mysql":
        url = urllib.parse.urlsplit(os.environ.get("MR_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test"))
        cmd = ["mysql", "--protocol=tcp", "-h", url.hostname, "-P", str(url.port or 3306), "-u", url.username or "root", "-e", sql]
        env = dict(os.environ, MYSQL_PWD=url.password or "")
    else:
        url = urllib.parse.urlsplit(os.environ.get("MR_TEST_POSTGRES_DSN", "postgres://root@127.0.0.1:5432/test"))
        cmd = ["psql", "-h", url.hostname, "-p", str(url.port or 5432), "-U", url.username or "root", "-d", url.path.lstrip("/") or "test", "-v", "ON_ERROR_STOP=1", "-c", sql]
        env = dict(os.environ, PGPASSWORD=url.password or "")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"{backend} is unreachable or refused {sql!r}: {done.stderr.strip()}", pytrace=False)


class Server:
    """`model-registry proxy` on a fresh database; `.url` is MLflow's tracking URI."""

    def __init__(self, backend: str, artifacts: str, env: dict | None = None):
        self.backend = backend
        self.dir = tempfile.mkdtemp(prefix="mr-mlflow-")
        self.db = f"mrmlf_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            flags = ["--embedmd-database-dsn", f"{self.dir}/registry.db"]
        elif backend == "mysql":
            admin("mysql", f"CREATE DATABASE `{self.db}`")
            url = urllib.parse.urlsplit(os.environ.get("MR_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test"))
            user = url.username or "root" if not url.password else f"{url.username}:{url.password}"
            flags = ["--embedmd-database-type", "mysql", "--embedmd-database-dsn", f"{user}@tcp({url.hostname}:{url.port or 3306})/{self.db}"]
        else:
            admin("postgres", f'CREATE DATABASE "{self.db}"')
            url = urllib.parse.urlsplit(os.environ.get("MR_TEST_POSTGRES_DSN", "postgres://root@127.0.0.1:5432/test"))
            netloc = url.netloc.rsplit("@", 1)[0] + "@" + f"{url.hostname}:{url.port or 5432}"
            flags = ["--embedmd-database-type", "postgres", "--embedmd-database-dsn", f"postgres://{netloc}/{self.db}"]
        self.artifacts = artifacts if "://" in artifacts else f"{self.dir}/{artifacts}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = os.environ.get("MR_BIN") or str(REPO / "target" / "debug" / "model-registry")
        self.log = open(f"{self.dir}/server.log", "w")
        server_env = {k: v for k, v in os.environ.items() if not k.startswith("MR_")}
        server_env.update(env or {})
        self.proc = subprocess.Popen(
            [binary, "proxy", "--hostname", "127.0.0.1", "--port", str(self.port), "--artifacts-destination", self.artifacts, *flags],
            stdout=self.log, stderr=subprocess.STDOUT, env=server_env,
        )
        deadline = time.time() + READY_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"server not ready on {backend}:\n{open(self.log.name).read()[-3000:]}", pytrace=False)
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        if self.backend == "mysql":
            admin("mysql", f"DROP DATABASE IF EXISTS `{self.db}`")
        elif self.backend == "postgres":
            admin("postgres", f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def forget_artifact_repos():
    """MLflow caches a run's artifact repository by run id, and every server here starts its
    ids at 1: a test must not upload into the previous test's server."""
    from mlflow.tracking._tracking_service import utils

    utils._artifact_repos_cache.clear()


@pytest.fixture(scope="module", params=BACKENDS)
def server(request):
    s = Server(request.param, "artifacts")
    yield s
    s.stop()


@pytest.fixture
def sqlite_server():
    s = Server("sqlite", "artifacts")
    yield s
    s.stop()


MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{MOTO_PORT}",
    "AWS_ALLOW_HTTP": "true",
}


@pytest.fixture(scope="module")
def moto():
    """moto's S3 server on 127.0.0.1, with a bucket `artifacts`; stopped at the end."""
    log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(MOTO_PORT)], stdout=log, stderr=subprocess.STDOUT)
    import boto3

    s3 = boto3.client("s3", endpoint_url=MOTO_ENV["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    deadline = time.time() + 30
    while True:
        try:
            s3.create_bucket(Bucket="artifacts")
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"moto did not start:\n{open(log.name).read()[-2000:]}", pytrace=False)
            time.sleep(0.2)
    yield s3
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def s3_server(moto):
    s = Server("sqlite", "s3://artifacts/mlflow", env=MOTO_ENV)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def mlflow_server():
    """MLflow's own server (the same pinned version) on SQLite, serving artifacts, for the
    differential test; stopped at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    port = free_port()
    log = open(workdir / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{workdir}/mlflow.db", "--artifacts-destination", str(workdir / "artifacts"),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except Exception:
            pass
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"mlflow server did not start:\n{open(workdir / 'server.log').read()[-3000:]}", pytrace=False)
        time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
