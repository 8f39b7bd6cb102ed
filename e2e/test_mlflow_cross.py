"""One set of data through two APIs: what MLflow's REST API registers, the official Kubeflow
client (0.3.14 and 0.3.18, whichever this venv holds) reads, and the other way round; a version
or model Kubeflow archives shows in MLflow as docs/mlflow.md says. The MLflow side is spoken
with plain HTTP here (this venv has no mlflow package); e2e/mlflow_api/ runs MLflow's own client.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from clientinfo import API
from model_registry import ModelRegistry
from model_registry.types import ModelVersionState, RegisteredModelState


def mlflow(srv, method: str, path: str, body: dict | None = None, **query) -> tuple[int, dict]:
    url = f"{srv.base_url}/api/2.0/mlflow/{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture
def kf(mr_server) -> ModelRegistry:
    host, port = mr_server
    return ModelRegistry(f"http://{host}", port, author="e2e", is_secure=False)


def test_mlflow_registered_model_is_read_by_the_kubeflow_client(mr_server, kf):
    name = f"mlf-{uuid.uuid4().hex[:8]}"
    status, _ = mlflow(mr_server, "POST", "registered-models/create",
                       {"name": name, "description": "from mlflow", "tags": [{"key": "team", "value": "risk"}]})
    assert status == 200
    status, body = mlflow(mr_server, "POST", "model-versions/create",
                          {"name": name, "source": "s3://bucket/model/1", "run_id": "r1", "description": "first"})
    assert status == 200 and body["model_version"]["version"] == "1"
    assert mlflow(mr_server, "POST", "registered-models/alias", {"name": name, "alias": "champion", "version": "1"})[0] == 200

    rm = kf.get_registered_model(name)
    assert rm.description == "from mlflow"
    assert rm.custom_properties["mlflow.tag.team"] == "risk"
    assert rm.custom_properties["mlflow.alias.champion"] == "1"
    mv = kf.get_model_version(name, "1")
    assert mv.description == "first"
    assert mv.custom_properties["mlflow.run_id"] == "r1"
    assert kf.get_model_artifact(name, "1").uri == "s3://bucket/model/1"

    # A Kubeflow archive: the version shows as MLflow's "Archived" stage.
    mv.state = ModelVersionState.ARCHIVED
    kf.update(mv)
    status, body = mlflow(mr_server, "GET", "model-versions/get", name=name, version="1")
    assert status == 200 and body["model_version"]["current_stage"] == "Archived"
    # ... and an MLflow transition out of Archived makes it LIVE again for Kubeflow.
    assert mlflow(mr_server, "POST", "model-versions/transition-stage",
                  {"name": name, "version": "1", "stage": "Production", "archive_existing_versions": False})[0] == 200
    assert kf.get_model_version(name, "1").state == ModelVersionState.LIVE


def test_kubeflow_registered_model_is_read_through_mlflow(mr_server, kf):
    name = f"kf-{uuid.uuid4().hex[:8]}"
    kf.register_model(name, "s3://bucket/kf/v1", version="v1", model_format_name="onnx",
                      model_format_version="1", description="kubeflow made", author="alice")
    status, body = mlflow(mr_server, "GET", "registered-models/get", name=name)
    assert status == 200
    assert [v["version"] for v in body["registered_model"]["latest_versions"]] == ["v1"]
    status, body = mlflow(mr_server, "GET", "model-versions/get", name=name, version="v1")
    assert status == 200
    mv = body["model_version"]
    assert (mv["source"], mv["current_stage"], mv["user_id"], mv["description"]) == ("s3://bucket/kf/v1", "None", "alice", "kubeflow made")
    status, body = mlflow(mr_server, "GET", "model-versions/get-download-uri", name=name, version="v1")
    assert body == {"artifact_uri": "s3://bucket/kf/v1"}
    # MLflow numbers the next version after what Kubeflow made; Kubeflow sees it by that name.
    status, body = mlflow(mr_server, "POST", "model-versions/create", {"name": name, "source": "s3://bucket/kf/2"})
    assert status == 200 and body["model_version"]["version"] == "1"
    assert kf.get_model_artifact(name, "1").uri == "s3://bucket/kf/2"

    # A Kubeflow-archived registered model is still an MLflow registered model.
    rm = kf.get_registered_model(name)
    rm.state = RegisteredModelState.ARCHIVED
    kf.update(rm)
    status, body = mlflow(mr_server, "GET", "registered-models/search", filter=f"name = '{name}'")
    assert status == 200 and [m["name"] for m in body["registered_models"]] == [name]

    # MLflow's delete removes what Kubeflow sees, versions and artifacts included.
    assert mlflow(mr_server, "DELETE", "registered-models/delete", {"name": name})[0] == 200
    assert kf.get_registered_model(name) is None


def test_a_served_version_is_not_deleted(mr_server, kf):
    name = f"served-{uuid.uuid4().hex[:8]}"
    kf.register_model(name, "s3://bucket/served/v1", version="v1", model_format_name="onnx", model_format_version="1")
    rm, mv = kf.get_registered_model(name), kf.get_model_version(name, "v1")
    # The synchronous client has no serving calls: the Kubeflow REST API of this client's version.
    base = mr_server.base_url + API
    env_id = post_json(f"{base}/serving_environments", {"name": f"env-{name}"})["id"]
    post_json(f"{base}/inference_services",
              {"name": f"isvc-{name}", "servingEnvironmentId": env_id, "registeredModelId": rm.id, "modelVersionId": mv.id})
    status, body = mlflow(mr_server, "DELETE", "model-versions/delete", {"name": name, "version": "v1"})
    assert status == 409 and body["error_code"] == "RESOURCE_CONFLICT" and "inference service" in body["message"]
    status, body = mlflow(mr_server, "DELETE", "registered-models/delete", {"name": name})
    assert status == 409 and body["error_code"] == "RESOURCE_CONFLICT"
    assert kf.get_model_version(name, "v1") is not None


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())
