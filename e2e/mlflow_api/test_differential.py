"""The same sequence of MLflow model registry calls against this server and against MLflow's own
server (`mlflow server`, the pinned version, SQLite): the same statuses and the same response
bodies, except the fields docs/mlflow.md lists (times, which each server takes from its own clock;
error messages, whose wording differs; only their `error_code` is compared). Local `file://`
sources are left out: MLflow's server refuses them without a run (docs/compatibility.md).
"""

from __future__ import annotations

import uuid

import requests

# Times come from each server's clock.
IGNORED = {"creation_timestamp", "last_updated_timestamp"}


def normalized(value):
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items() if k not in IGNORED}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def sequence(name: str) -> list[tuple[str, str, dict]]:
    other = name + "-other"
    return [
        ("POST", "registered-models/create", {"name": name, "description": "d", "tags": [{"key": "t", "value": "1"}]}),
        ("POST", "registered-models/create", {"name": name}),
        ("POST", "registered-models/create", {"name": other}),
        ("GET", "registered-models/get", {"name": name}),
        ("GET", "registered-models/get", {"name": name + "-missing"}),
        ("PATCH", "registered-models/update", {"name": name, "description": "d2"}),
        ("POST", "registered-models/set-tag", {"name": name, "key": "k", "value": "v"}),
        ("DELETE", "registered-models/delete-tag", {"name": name, "key": "t"}),
        ("POST", "model-versions/create", {"name": name, "source": "s3://b/1", "run_id": "r1", "description": "one"}),
        ("POST", "model-versions/create", {"name": name, "source": "s3://b/2", "tags": [{"key": "a", "value": "b"}]}),
        ("POST", "model-versions/create", {"name": name, "source": f"models:/{name}/1"}),
        ("POST", "model-versions/create", {"name": name + "-missing", "source": "s3://b/x"}),
        ("GET", "model-versions/get", {"name": name, "version": "2"}),
        ("GET", "model-versions/get", {"name": name, "version": "9"}),
        ("PATCH", "model-versions/update", {"name": name, "version": "1", "description": "uno"}),
        ("POST", "model-versions/set-tag", {"name": name, "version": "1", "key": "x", "value": "y"}),
        ("DELETE", "model-versions/delete-tag", {"name": name, "version": "2", "key": "a"}),
        ("GET", "model-versions/get-download-uri", {"name": name, "version": "1"}),
        ("POST", "registered-models/alias", {"name": name, "alias": "champion", "version": "1"}),
        ("POST", "registered-models/alias", {"name": name, "alias": "latest", "version": "1"}),
        ("GET", "registered-models/alias", {"name": name, "alias": "champion"}),
        ("POST", "registered-models/alias", {"name": name, "alias": "champion", "version": "2"}),
        ("GET", "registered-models/alias", {"name": name, "alias": "champion"}),
        ("GET", "registered-models/alias", {"name": name, "alias": "nobody"}),
        ("DELETE", "registered-models/alias", {"name": name, "alias": "champion"}),
        ("POST", "model-versions/transition-stage",
         {"name": name, "version": "1", "stage": "Staging", "archive_existing_versions": False}),
        ("POST", "model-versions/transition-stage",
         {"name": name, "version": "2", "stage": "production", "archive_existing_versions": False}),
        ("POST", "model-versions/transition-stage",
         {"name": name, "version": "3", "stage": "Production", "archive_existing_versions": True}),
        ("POST", "registered-models/get-latest-versions", {"name": name}),
        ("POST", "registered-models/get-latest-versions", {"name": name, "stages": ["Production"]}),
        ("GET", "registered-models/get", {"name": name}),
        ("GET", "registered-models/search", {"filter": f"name = '{name}'"}),
        ("GET", "registered-models/search", {"filter": f"name LIKE '{name}%'", "order_by": ["name DESC"]}),
        ("GET", "registered-models/search", {"filter": f"name LIKE '{name}%' AND tags.k = 'v'"}),
        ("GET", "registered-models/search", {"filter": f"name = '{name}' OR name = 'x'"}),
        ("GET", "model-versions/search", {"filter": f"name = '{name}'", "max_results": "2",
                                          "order_by": ["version_number ASC"]}),
        ("GET", "model-versions/search", {"filter": "run_id = 'r1'"}),
        ("GET", "model-versions/search", {"filter": f"name = '{name}' AND tags.x = 'y'"}),
        ("POST", "registered-models/rename", {"name": other, "new_name": name}),
        ("POST", "registered-models/rename", {"name": other, "new_name": other + "-2"}),
        ("DELETE", "model-versions/delete", {"name": name, "version": "3"}),
        ("GET", "model-versions/get", {"name": name, "version": "3"}),
        ("POST", "model-versions/create", {"name": name, "source": "s3://b/4"}),
        ("DELETE", "registered-models/delete", {"name": name}),
        ("GET", "registered-models/get", {"name": name}),
        ("DELETE", "registered-models/delete", {"name": other + "-2"}),
    ]


def call(base: str, method: str, path: str, body: dict):
    url = f"{base}/api/2.0/mlflow/{path}"
    if method == "GET":
        r = requests.get(url, params=body, timeout=30)
    else:
        r = requests.request(method, url, json=body, timeout=30)
    payload = r.json()
    if "error_code" in payload:
        payload = {"error_code": payload["error_code"]}
    return r.status_code, normalized(payload)


def test_same_answers_as_mlflows_own_server(mr_server, mlflow_server):
    name = f"diff-{uuid.uuid4().hex[:8]}"
    differences = []
    for method, path, body in sequence(name):
        ours = call(mr_server.base_url, method, path, body)
        theirs = call(mlflow_server, method, path, body)
        if ours != theirs:
            differences.append(f"{method} {path} {body}:\n  mlflow: {theirs}\n  ours:   {ours}")
    assert not differences, "\n".join(differences)
