"""Fixtures of the end-to-end suite: the real model-registry binary on a fresh database per backend.

The suite runs with whichever official client the venv holds (clientinfo.py): model-registry 0.3.14
(`.venv`, REST API /api/model_registry/v1alpha3) or 0.3.18 (`.venv-v1`, /api/model_registry/v1).
Tests marked `experiments` (experiments, runs, metric history: v1alpha3 only) are deselected, not
skipped, when the client speaks v1; tests marked `v1` (the v1 API's own differences) when it speaks
v1alpha3. The header of the run names the client and its prefix.

Every test that uses `mr_server` (or a fixture built on it) runs once per backend: sqlite, mysql
(MariaDB) and postgres. For each backend the session creates a fresh database, starts
`model-registry proxy` on a free port, waits until `GET /readyz/health` answers 200 (30 s, then
the test errors with the server's log), hands out `(host, port)`, and at the end stops the server
(SIGTERM, then SIGKILL) and drops the database. `fresh_mr_server` does the same per test, for the
tests that need an empty database (exact list contents and orderings).

An unreachable MariaDB/PostgreSQL is an ERROR of every test of that backend, never a skip.

Environment:
    MR_BIN                 server binary (default: <repo>/target/debug/model-registry); not built here
    MR_E2E_BACKENDS        comma-separated subset of sqlite,mysql,postgres (default: all three)
    MR_TEST_MYSQL_DSN      admin URL of MariaDB/MySQL (default mysql://root@127.0.0.1:3306/test);
                           host, port, user and password are used, the database name is not
    MR_TEST_POSTGRES_DSN   admin URL of PostgreSQL (default postgres://root@127.0.0.1:5432/test)
    MR_TEST_POSTGRES_POOLER_DSN  a transaction pooler (PgBouncer) in front of it: the servers go
                           through it with --embedmd-database-pooler=transaction
    MR_E2E_READY_TIMEOUT   seconds to wait for readiness (default 30)
    MR_E2E_KEEP            set to 1 to keep the databases, SQLite files and server logs
"""

from __future__ import annotations

import pytest

from clientinfo import HAS_EXPERIMENTS, IS_V1, describe
from mrserver import BACKENDS, MRServer, _Instance  # noqa: F401 (test modules import _Instance from here)

# MLflow's client suites have their own venvs and runners (e2e/mlflow_api/run.sh,
# e2e/mlflow_tracking/run.sh).
collect_ignore = ["mlflow_api", "mlflow_tracking"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    """The database backend of the current test: sqlite, mysql or postgres."""
    return request.param


@pytest.fixture(scope="session")
def mr_server(backend):
    """A server shared by the whole session for this backend: yields (host, port) (an MRServer)."""
    inst = _Instance(backend, "session server")
    try:
        srv = inst.start()
        yield srv
    finally:
        inst.stop()


@pytest.fixture
def fresh_mr_server(backend):
    """A server of its own on an empty database, for one test: yields (host, port) (an MRServer)."""
    inst = _Instance(backend, "per-test server")
    try:
        srv = inst.start()
        yield srv
    finally:
        inst.stop()


def pytest_report_header(config):
    return [describe()]


def pytest_collection_modifyitems(config, items):
    """Tests of an API the client does not speak are deselected (not skipped): `experiments` without
    experiments in the client's API (v1), `v1` with a v1alpha3 client."""
    absent = [m for m, present in (("experiments", HAS_EXPERIMENTS), ("v1", IS_V1)) if not present]
    dropped = [it for it in items if any(it.get_closest_marker(m) for m in absent)]
    if dropped:
        items[:] = [it for it in items if it not in dropped]
        config.hook.pytest_deselected(items=dropped)


# Attach the tail of the server log to failing tests: the request that failed is usually there.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("setup", "call"):
        for name in ("fresh_mr_server", "mr_server"):
            srv = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if isinstance(srv, MRServer):
                rep.sections.append((f"model-registry log ({srv.backend}, {name})", srv.log_tail(40)))
                break
