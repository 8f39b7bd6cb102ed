"""Fixtures of the MLflow client suite: the real model-registry binary per backend (the same
helper as the Kubeflow client suite, e2e/mrserver.py), an `MlflowClient` pointed at it, and
MLflow's own server (`mlflow server`, SQLite backend) for the differential test.

Environment: those of e2e/conftest.py (MR_BIN, MR_E2E_BACKENDS, MR_TEST_MYSQL_DSN,
MR_TEST_POSTGRES_DSN, MR_E2E_KEEP), and
    MR_MLFLOW_PORTS   the port range MLflow's own server may take (default 15100-15199)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parent.parent
sys.path.append(str(E2E))

from mrserver import BACKENDS, MRServer, _Instance, _stop  # noqa: E402

# Errors must surface at once, not after MLflow's default of 7 retries with backoff.
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"
# Whatever the client opens as its tracking store stays out of the checkout.
os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp(prefix='mlflow-tracking-')}/mlflow.db")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def mr_server(backend):
    inst = _Instance(backend, "mlflow suite server")
    try:
        yield inst.start()
    finally:
        inst.stop()


@pytest.fixture
def client(mr_server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mr_server.base_url, registry_uri=mr_server.base_url)


def _free_port_in(first: int, last: int) -> int:
    for port in range(first, last + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {first}-{last} for MLflow's server", pytrace=False)


@pytest.fixture(scope="session")
def mlflow_server():
    """MLflow's own server (the pinned version) on a fresh SQLite file: yields its URL."""
    first, last = (int(p) for p in os.environ.get("MR_MLFLOW_PORTS", "15100-15199").split("-"))
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    port = _free_port_in(first, last)
    log = open(workdir / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{workdir}/mlflow.db", "--default-artifact-root", str(workdir / "artifacts"),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}:\n{(workdir / 'server.log').read_text()[-4000:]}",
                            pytrace=False)
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not ready after 120 s:\n{(workdir / 'server.log').read_text()[-4000:]}",
                            pytrace=False)
            time.sleep(0.5)
        yield url
    finally:
        _stop(proc)
        log.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("setup", "call"):
        srv = item.funcargs.get("mr_server") if hasattr(item, "funcargs") else None
        if isinstance(srv, MRServer):
            rep.sections.append((f"model-registry log ({srv.backend})", srv.log_tail(40)))
