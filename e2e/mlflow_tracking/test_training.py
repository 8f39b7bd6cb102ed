"""MLflow's own client against the registry's tracking API and artifact proxy: a training script
as users write it, read back through MLflow and through the Kubeflow API (v1alpha3, official
client 0.3.14 where its venv exists), on every backend; bad input; artifacts on moto S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import urllib.request
import uuid
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parents[2]
KUBEFLOW_VENV = Path(os.environ.get("MR_TEST_VENV", REPO / ".venv"))


def train(url: str, experiment: str) -> dict:
    """The script of the issue, up to `log_model(registered_model_name="iris")`; returns what the
    later checks need."""
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(experiment)
    X, y = load_iris(return_X_y=True)
    files = Path(tempfile.mkdtemp())
    (files / "notes.txt").write_text("trained on iris")
    (files / "plots").mkdir()
    (files / "plots" / "loss.csv").write_text("step,loss\n0,1.0\n")
    (files / "plots" / "nested").mkdir()
    (files / "plots" / "nested" / "deep.txt").write_text("deep")
    with mlflow.start_run() as run:
        mlflow.log_params({"lr": "0.1", "max_iter": 200})
        for step in range(100):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("accuracy", 0.93)
        mlflow.set_tag("team", "vision")
        mlflow.log_artifact(str(files / "notes.txt"))
        mlflow.log_artifacts(str(files / "plots"), artifact_path="plots")
        model = LogisticRegression(max_iter=200).fit(X, y)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="iris", input_example=X[:2])
    return {"run_id": run.info.run_id, "model_uri": info.model_uri, "expected": model.predict(X[:10]).tolist()}


def test_training_script_round_trip(server):
    experiment = f"iris-{uuid.uuid4().hex[:8]}"
    out = train(server.url, experiment)
    client = MlflowClient(server.url)
    run = client.get_run(out["run_id"])
    assert run.info.status == "FINISHED" and run.info.end_time >= run.info.start_time
    assert run.data.params == {"lr": "0.1", "max_iter": "200"}
    assert run.data.metrics == {"loss": pytest.approx(0.01), "accuracy": pytest.approx(0.93)}
    assert run.data.tags["team"] == "vision"
    history = client.get_metric_history(out["run_id"], "loss")
    assert sorted((m.step, m.value) for m in history) == [(s, pytest.approx(1.0 / (s + 1))) for s in range(100)]

    assert sorted(f.path for f in client.list_artifacts(out["run_id"])) == ["notes.txt", "plots"]
    assert sorted(f.path for f in client.list_artifacts(out["run_id"], "plots")) == ["plots/loss.csv", "plots/nested"]
    local = Path(client.download_artifacts(out["run_id"], "plots", tempfile.mkdtemp()))
    assert (local / "nested" / "deep.txt").read_text() == "deep"

    # A fresh process loads the logged model and predicts the same values.
    script = textwrap.dedent(f"""
        import json, mlflow, mlflow.sklearn
        from sklearn.datasets import load_iris
        mlflow.set_tracking_uri({server.url!r})
        X, _ = load_iris(return_X_y=True)
        print(json.dumps(mlflow.sklearn.load_model("models:/iris/1").predict(X[:10]).tolist()))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == out["expected"]

    # Autologging on a second run.
    mlflow.sklearn.autolog()
    try:
        X, y = load_iris(return_X_y=True)
        with mlflow.start_run() as auto:
            LogisticRegression(max_iter=150, C=0.5).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    auto_run = client.get_run(auto.info.run_id)
    assert auto_run.data.params["C"] == "0.5" and auto_run.data.params["max_iter"] == "150"
    assert "training_accuracy_score" in auto_run.data.metrics

    # search_runs: metric, param and tag filters, ordering.
    exp = client.get_experiment_by_name(experiment)
    assert exp.artifact_location == f"mlflow-artifacts:/{exp.experiment_id}"
    found = client.search_runs([exp.experiment_id], "metrics.accuracy > 0.9 and params.lr = '0.1' and tags.team = 'vision'")
    assert [r.info.run_id for r in found] == [out["run_id"]]
    assert client.search_runs([exp.experiment_id], "params.lr = '0.2'") == []
    ordered = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    assert [r.info.run_id for r in ordered] == [out["run_id"], auto.info.run_id]
    by_metric = client.search_runs([exp.experiment_id], "metrics.training_accuracy_score > 0", order_by=["metrics.training_accuracy_score DESC"])
    assert [r.info.run_id for r in by_metric] == [auto.info.run_id]

    kubeflow_view(server.url, out["run_id"], exp.experiment_id)


def rest(url: str) -> dict:
    with urllib.request.urlopen(url) as r:
        return json.load(r)


def kubeflow_view(url: str, run_id: str, experiment_id: str) -> None:
    """The same run through the Kubeflow API: run, params, metrics and the 100 history rows."""
    api = f"{url}/api/model_registry/v1alpha3"
    run = rest(f"{api}/experiment_runs/{run_id}")
    assert run["experimentId"] == experiment_id and run["status"] == "FINISHED"
    logged = rest(f"{api}/experiment_runs/{run_id}/artifacts?pageSize=100")["items"]
    params = {a["name"]: a["value"] for a in logged if a["artifactType"] == "parameter"}
    metrics = {a["name"]: a["value"] for a in logged if a["artifactType"] == "metric"}
    assert params == {"lr": "0.1", "max_iter": "200"}
    assert metrics == {"loss": pytest.approx(0.01), "accuracy": pytest.approx(0.93)}
    assert [a["name"] for a in logged if a["artifactType"] == "model-artifact"] == ["model"]
    history = rest(f"{api}/experiment_runs/{run_id}/metric_history?name=loss&pageSize=200")
    assert history["size"] == 100
    # The registered version, served from where its files are.
    model = rest(f"{api}/registered_model?name=iris")
    version = rest(f"{api}/registered_models/{model['id']}/versions")["items"][0]
    assert version["name"] == "1"
    files = rest(f"{api}/model_versions/{version['id']}/artifacts")["items"]
    assert len(files) == 1 and files[0]["uri"].endswith("/artifacts") and "/models/m-" in files[0]["uri"], files
    python = KUBEFLOW_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail(f"the Kubeflow client's venv {KUBEFLOW_VENV} is missing (scripts/test-env.sh)", pytrace=False)
    port = url.rsplit(":", 1)[1]
    script = textwrap.dedent(f"""
        import json
        from model_registry import ModelRegistry
        mr = ModelRegistry("http://127.0.0.1", {port}, author="test", is_secure=False)
        run = mr.get_experiment_run({run_id!r})
        logs = list(mr.get_experiment_run_logs(run_id={run_id!r}))
        print(json.dumps({{"experiment": run.experiment_id, "logs": sorted(getattr(l, "name", "") for l in logs)}}))
    """)
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["experiment"] == experiment_id
    assert {"lr", "max_iter", "loss", "accuracy"} <= set(seen["logs"]), seen


def test_default_experiment_is_0_and_the_latest_metric_has_the_highest_step(server, monkeypatch):
    """`start_run()` without `set_experiment`: the client's experiment "0", MLflow's "Default"."""
    mlflow.set_tracking_uri(server.url)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.5, step=5)
        mlflow.log_metric("loss", 0.9, step=3)
        mlflow.log_text("hello", "notes/hello.txt")
    run_id = run.info.run_id
    client = MlflowClient(server.url)
    got = client.get_run(run_id)
    assert got.info.experiment_id == "0"
    assert got.info.artifact_uri == f"mlflow-artifacts:/0/{run_id}/artifacts"
    assert got.data.metrics == {"loss": 0.5}, "step 5 is the latest, though step 3 came last"
    assert sorted((m.step, m.value) for m in client.get_metric_history(run_id, "loss")) == [(3, 0.9), (5, 0.5)]
    assert client.get_experiment("0").name == "Default"
    assert client.get_experiment_by_name("Default").experiment_id == "0"
    assert "0" in [e.experiment_id for e in client.search_experiments()]
    assert [r.info.run_id for r in client.search_runs(["0"], "metrics.loss = 0.5")] == [run_id]
    assert client.search_runs(["0"], "metrics.loss = 0.9") == []
    assert Path(client.download_artifacts(run_id, "notes/hello.txt")).read_text() == "hello"
    # Kubeflow clients see the registry's own experiment.
    api = f"{server.url}/api/model_registry/v1alpha3"
    kf_run = requests.get(f"{api}/experiment_runs/{run_id}", timeout=30).json()
    assert kf_run["experimentId"] != "0"
    assert requests.get(f"{api}/experiments/{kf_run['experimentId']}", timeout=30).json()["name"] == "Default"


def code_of(excinfo) -> str:
    return excinfo.value.error_code


def test_bad_input_is_mlflows_error_and_writes_nothing(sqlite_server):
    client = MlflowClient(sqlite_server.url)
    exp = client.create_experiment(f"bad-{uuid.uuid4().hex[:6]}")
    run = client.create_run(exp)
    run_id = run.info.run_id
    client.log_param(run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as e:
        client.log_param(run_id, "lr", "0.2")
    assert code_of(e) == "INVALID_PARAMETER_VALUE" and "Changing param values is not allowed" in str(e.value)
    assert client.get_run(run_id).data.params == {"lr": "0.1"}

    with pytest.raises(MlflowException) as e:
        client.get_run("999999")
    assert code_of(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.log_metric("999999", "m", 1.0)
    assert code_of(e) == "RESOURCE_DOES_NOT_EXIST"

    # The client splits large batches itself: the request goes out as a script could send it.
    metrics = [{"key": "m", "value": float(i), "timestamp": 0, "step": i} for i in range(1001)]
    r = requests.post(f"{sqlite_server.url}/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": metrics})
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "at most 1000 metrics" in r.json()["message"]
    client.log_batch(run_id, metrics=[Metric("ok", 1.0, 0, 0)])
    assert client.get_run(run_id).data.metrics == {"ok": 1.0}
    assert client.get_metric_history(run_id, "m") == []

    with pytest.raises(MlflowException) as e:
        client.create_experiment(client.get_experiment(exp).name)
    assert code_of(e) == "RESOURCE_ALREADY_EXISTS"

    base = f"{sqlite_server.url}/api/2.0/mlflow-artifacts"
    for path in ["%2E%2E/escape.txt", "..%2Fescape.txt", "%2Fetc%2Fescape.txt"]:
        r = requests.put(f"{base}/artifacts/{path}", data=b"x")
        assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), path
    # A multipart upload with a part missing: completing is refused, no file appears.
    created = requests.post(f"{base}/mpu/create/{exp}/{run_id}/artifacts", json={"path": "/x/big.bin", "num_parts": 2}).json()
    assert requests.put(created["credentials"][0]["url"], data=b"first").status_code == 200
    parts = [{"part_number": 1, "etag": ""}, {"part_number": 2, "etag": ""}]
    r = requests.post(f"{base}/mpu/complete/{exp}/{run_id}/artifacts", json={"path": "/x/big.bin", "upload_id": created["upload_id"], "parts": parts})
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert client.list_artifacts(run_id) == []
    assert not any(p.name == "big.bin" for p in Path(sqlite_server.artifacts).rglob("*"))

    r = requests.get(f"{sqlite_server.url}/api/2.0/mlflow/traces/search")
    assert (r.status_code, r.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND"), "GenAI routes are out of scope"


def test_large_file_through_mlflows_multipart_upload(sqlite_server, monkeypatch):
    """The client's own multipart path (MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD), parts through us."""
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1 << 20))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 << 20))
    mlflow.set_tracking_uri(sqlite_server.url)
    data = np.random.default_rng(7).bytes(23 << 20)
    path = Path(tempfile.mkdtemp()) / "weights.bin"
    path.write_bytes(data)
    client = MlflowClient(sqlite_server.url)
    run = client.create_run(client.create_experiment(f"mpu-{uuid.uuid4().hex[:6]}"))
    client.log_artifact(run.info.run_id, str(path), "model")
    back = Path(client.download_artifacts(run.info.run_id, "model/weights.bin", tempfile.mkdtemp()))
    assert back.read_bytes() == data
    assert "/mpu/parts/" in open(sqlite_server.log.name).read(), "the parts came through the proxy"
    assert not list(Path(sqlite_server.artifacts, ".mlflow-mpu").glob("*")), "no parts are left behind"


@pytest.mark.s3
def test_artifacts_on_s3(s3_server, moto):
    out = train(s3_server.url, "on-s3")
    client = MlflowClient(s3_server.url)
    assert sorted(f.path for f in client.list_artifacts(out["run_id"])) == ["notes.txt", "plots"]
    keys = [o["Key"] for o in moto.list_objects_v2(Bucket="artifacts", Prefix="mlflow/").get("Contents", [])]
    assert any(k.endswith(f"/{out['run_id']}/artifacts/notes.txt") for k in keys), keys
    assert any(k.endswith("/artifacts/MLmodel") and "/models/" in k for k in keys), keys
    loaded = mlflow.sklearn.load_model(out["model_uri"])
    X, _ = load_iris(return_X_y=True)
    assert loaded.predict(X[:10]).tolist() == out["expected"]
    # The Kubeflow model artifact points at the files' real place in the bucket.
    model_id = out["model_uri"].rsplit("/", 1)[1]
    artifact = rest(f"{s3_server.url}/api/model_registry/v1alpha3/model_artifacts/{model_id[2:]}")
    assert artifact["uri"].startswith("s3://artifacts/mlflow/") and artifact["uri"].endswith(f"/models/{model_id}/artifacts")
