"""MLflow's own client with `MLFLOW_TRACKING_TOKEN` against the server in `--auth-mode token`
(on SQLite: what is checked is the edge, the same on every backend): no token is refused with
401, a reader may search but not create (403), a writer registers a model and a version.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mrserver import _Instance

READER = "mlflow-reader-" + uuid.uuid4().hex
WRITER = "mlflow-writer-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    tokens = tmp_path_factory.mktemp("auth") / "tokens"
    lines = [f"{name} {role} {hashlib.sha256(token.encode()).hexdigest()}\n"
             for name, role, token in [("reader", "reader", READER), ("writer", "writer", WRITER)]]
    tokens.write_text("".join(lines))
    inst = _Instance("sqlite", "token-mode server", ("--auth-mode", "token", "--auth-token-file", str(tokens)))
    try:
        yield inst.start()
    finally:
        inst.stop()


def client_with(server, monkeypatch, token: str | None) -> MlflowClient:
    """A client whose requests carry `token` (MLflow reads the variable on each request)."""
    if token is None:
        monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    return MlflowClient(tracking_uri=server.base_url, registry_uri=server.base_url)


def refused(call) -> MlflowException:
    with pytest.raises(MlflowException) as e:
        call()
    return e.value


def test_no_token_is_refused_with_401(token_server, monkeypatch):
    client = client_with(token_server, monkeypatch, None)
    error = refused(lambda: client.search_registered_models())
    assert (error.get_http_status_code(), error.error_code) == (401, "UNAUTHENTICATED")
    error = refused(lambda: client_with(token_server, monkeypatch, "not-a-token").search_registered_models())
    assert error.get_http_status_code() == 401


def test_a_reader_searches_but_cannot_create(token_server, monkeypatch):
    client = client_with(token_server, monkeypatch, READER)
    assert list(client.search_registered_models(filter_string="name = 'nothing-here'")) == []
    error = refused(lambda: client.create_registered_model("by-a-reader-" + uuid.uuid4().hex[:8]))
    assert (error.get_http_status_code(), error.error_code) == (403, "PERMISSION_DENIED")
    assert "needs writer" in error.message


def test_a_writer_registers_a_model_and_a_version(token_server, monkeypatch):
    client = client_with(token_server, monkeypatch, WRITER)
    name = "by-a-writer-" + uuid.uuid4().hex[:8]
    assert client.create_registered_model(name, description="with a token").name == name
    version = client.create_model_version(name, "s3://bucket/model", description="v1")
    assert version.version == "1"
    reader = client_with(token_server, monkeypatch, READER)
    assert reader.get_model_version(name, "1").source == "s3://bucket/model"
    assert [m.name for m in reader.search_registered_models(filter_string=f"name = '{name}'")] == [name]
