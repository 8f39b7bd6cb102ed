"""The same sequence of tracking calls against this server and against `mlflow server` (same
version, SQLite): the same statuses, error codes and bodies, except for the fields each server
makes up itself (ids, times, generated names) and the differences docs/compatibility.md lists."""

from __future__ import annotations

import requests

# Fields whose values each server makes up: compared for presence, not value.
MADE_UP = {"experiment_id", "run_id", "run_uuid", "artifact_uri", "artifact_location", "creation_time", "last_update_time", "end_time"}


def shape(value, key=None):
    """The value with made-up fields blanked and lists of key/value pairs sorted."""
    if key in MADE_UP:
        return "<made up>" if value not in (None, "") else value
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [shape(v) for v in value]
        if all(isinstance(i, dict) and "key" in i for i in items):
            items.sort(key=lambda i: (i["key"], str(i.get("step")), str(i.get("timestamp")), str(i.get("value"))))
        return items
    return value


class Both:
    def __init__(self, ours: str, theirs: str):
        self.urls = {"ours": ours, "mlflow": theirs}
        self.ids = {"ours": {}, "mlflow": {}}

    def call(self, method: str, path: str, body: dict | None = None, ids: dict | None = None):
        """One request to each server (`{name}` placeholders filled with that server's ids);
        both answers, checked for the same status and error code."""
        answers = {}
        for side, url in self.urls.items():
            def fill(v, ids=self.ids[side]):
                if isinstance(v, str):
                    return v.format(**ids)
                return [fill(i) for i in v] if isinstance(v, list) else v

            payload = {k: fill(v) for k, v in (body or {}).items()}
            if method == "GET":
                r = requests.get(f"{url}/api/2.0/mlflow/{path}", params=payload, timeout=30)
            else:
                r = requests.request(method, f"{url}/api/2.0/mlflow/{path}", json=payload, timeout=30)
            answers[side] = (r.status_code, r.json() if r.content else {})
        (s1, b1), (s2, b2) = answers["ours"], answers["mlflow"]
        assert s1 == s2, f"{method} {path}: status {s1} here, {s2} from MLflow: {b1} / {b2}"
        assert b1.get("error_code") == b2.get("error_code"), f"{method} {path}: {b1} / {b2}"
        for side, (_, b) in answers.items():
            for name, pointer in (ids or {}).items():
                value = b
                for part in pointer.split("."):
                    value = value[part]
                self.ids[side][name] = value
        return b1, b2

    def same(self, method: str, path: str, body: dict | None = None, ids: dict | None = None, drop=()):
        ours, theirs = self.call(method, path, body, ids)
        if "error_code" in ours:
            return
        for field in drop:
            ours.pop(field, None)
            theirs.pop(field, None)
        assert shape(ours) == shape(theirs), f"{method} {path}:\nhere:   {shape(ours)}\nMLflow: {shape(theirs)}"


def test_tracking_calls_answer_as_mlflows_server(sqlite_server, mlflow_server):
    both = Both(sqlite_server.url, mlflow_server)
    both.same("POST", "experiments/create", {"name": "diff", "tags": [{"key": "team", "value": "a"}]}, ids={"exp": "experiment_id"})
    both.same("POST", "experiments/create", {"name": "diff"})  # RESOURCE_ALREADY_EXISTS
    both.same("GET", "experiments/get-by-name", {"experiment_name": "diff"})
    both.same("GET", "experiments/get-by-name", {"experiment_name": "nope"})
    both.same("GET", "experiments/get", {"experiment_id": "{exp}"})
    both.same("POST", "experiments/set-experiment-tag", {"experiment_id": "{exp}", "key": "k", "value": "v"})
    run = {"experiment_id": "{exp}", "start_time": 1700000000000, "run_name": "first", "user_id": "ann",
           "tags": [{"key": "t", "value": "x"}]}
    both.same("POST", "runs/create", run, ids={"run": "run.info.run_id"})
    both.same("POST", "runs/log-parameter", {"run_id": "{run}", "key": "lr", "value": "0.1"})
    both.same("POST", "runs/log-parameter", {"run_id": "{run}", "key": "lr", "value": "0.1"})
    both.same("POST", "runs/log-parameter", {"run_id": "{run}", "key": "lr", "value": "0.2"})  # changed: refused
    for step in range(3):
        both.same("POST", "runs/log-metric", {"run_id": "{run}", "key": "loss", "value": 1.0 / (step + 1), "timestamp": 1700000000100 + step, "step": step})
    both.same("POST", "runs/log-metric", {"run_id": "{run}", "key": "loss"})  # no value, no timestamp
    both.same("GET", "metrics/get-history", {"run_id": "{run}", "metric_key": "loss"})
    metrics = [{"key": "m", "value": 1.0, "timestamp": 0, "step": i} for i in range(1001)]
    both.same("POST", "runs/log-batch", {"run_id": "{run}", "metrics": metrics})
    batch = {"run_id": "{run}", "metrics": [{"key": "acc", "value": 0.9, "timestamp": 1700000000200, "step": 0}],
             "params": [{"key": "depth", "value": "3"}], "tags": [{"key": "stage", "value": "dev"}]}
    both.same("POST", "runs/log-batch", batch)
    both.same("POST", "runs/set-tag", {"run_id": "{run}", "key": "t2", "value": "y"})
    both.same("POST", "runs/delete-tag", {"run_id": "{run}", "key": "t2"})
    both.same("POST", "runs/delete-tag", {"run_id": "{run}", "key": "t2"})  # already gone
    both.same("GET", "runs/get", {"run_id": "{run}"})
    both.same("POST", "runs/update", {"run_id": "{run}", "status": "FINISHED", "end_time": 1700000001000})
    both.same("POST", "runs/search", {"experiment_ids": ["{exp}"], "filter": "metrics.acc > 0.5 and params.lr = '0.1'"})
    both.same("POST", "runs/search", {"experiment_ids": ["{exp}"], "filter": "params.lr = '0.2'"})
    both.same("POST", "runs/search", {"experiment_ids": ["{exp}"], "filter": "metrics.acc = 'x'"})
    both.same("GET", "runs/get", {"run_id": "123456789"})
    both.same("POST", "runs/delete", {"run_id": "{run}"})
    both.same("GET", "runs/get", {"run_id": "{run}"})
    both.same("POST", "runs/log-metric", {"run_id": "{run}", "key": "late", "value": 1.0, "timestamp": 0})
    both.same("POST", "runs/restore", {"run_id": "{run}"})
    both.same("POST", "experiments/delete", {"experiment_id": "{exp}"})
    both.same("GET", "experiments/get", {"experiment_id": "{exp}"})
    both.same("POST", "experiments/restore", {"experiment_id": "{exp}"})
    both.same("GET", "experiments/get", {"experiment_id": "{exp}"})


def test_run_search_answers_as_mlflows_server(sqlite_server, mlflow_server):
    """Run search: each operator, orders with runs lacking the key, and paging by token."""
    both = Both(sqlite_server.url, mlflow_server)
    both.same("POST", "experiments/create", {"name": "searched"}, ids={"exp": "experiment_id"})
    for i in range(7):
        run = {"experiment_id": "{exp}", "start_time": 1700000000000 + (i * 3) % 7, "run_name": f"R-{i}", "user_id": f"u{i % 2}"}
        both.same("POST", "runs/create", run, ids={"run": "run.info.run_id"})
        metrics = [{"key": "acc", "value": i / 10, "timestamp": 1700000000500, "step": 0}] if i % 3 else []
        tags = [{"key": "t", "value": f"x{i}" if i % 2 else "Y"}] if i != 4 else []
        both.same("POST", "runs/log-batch", {"run_id": "{run}", "metrics": metrics, "params": [{"key": "lr", "value": f"0.{i % 3}"}], "tags": tags})
        if i % 2:
            both.same("POST", "runs/update", {"run_id": "{run}", "status": "FINISHED", "end_time": 1700000009000})
    search = lambda **body: both.same("POST", "runs/search", {"experiment_ids": ["{exp}"], **body})  # noqa: E731
    for filter in [
        "", "metrics.acc > 0.3", "metrics.acc >= 0.4", "metrics.acc < 0.2", "metrics.acc <= 0.1",
        "metrics.acc = 0.5", "metrics.acc != 0.5", "params.lr = '0.1'", "params.lr != '0.1'",
        "params.lr LIKE '%.2'", "tags.t ILIKE 'X%'", "tags.t IS NULL", "tags.t IS NOT NULL",
        "attributes.status = 'FINISHED'", "attributes.run_name LIKE 'R-%'", "attributes.run_name ILIKE 'r-1'",
        "attributes.user_id = 'u1'", "attributes.start_time >= 1700000000003", "attributes.end_time > 0",
        "metrics.acc > 0 and params.lr = '0.2' and tags.t LIKE 'x%'", "metrics.acc = 'x'", "params.lr > '0'",
    ]:
        search(filter=filter)
    for order in [["metrics.acc DESC"], ["metrics.acc"], ["params.lr", "attributes.run_name DESC"], ["tags.t DESC"],
                  ["attributes.start_time"], ["attributes.end_time DESC"]]:
        search(order_by=order)
    # Three pages of three: the tokens and the pages are MLflow's.
    both.same("POST", "runs/search", {"experiment_ids": ["{exp}"], "order_by": ["metrics.acc DESC"], "max_results": 3}, ids={"token": "next_page_token"})
    both.same("POST", "runs/search", {"experiment_ids": ["{exp}"], "order_by": ["metrics.acc DESC"], "max_results": 3, "page_token": "{token}"}, ids={"token": "next_page_token"})
    both.same("POST", "runs/search", {"experiment_ids": ["{exp}"], "order_by": ["metrics.acc DESC"], "max_results": 3, "page_token": "{token}"})


def test_bulk_interval_history_answers_as_mlflows_server(sqlite_server, mlflow_server):
    """`metrics/get-history-bulk-interval` (MLflow's charts): sampling, step ranges, errors."""
    both = Both(sqlite_server.url, mlflow_server)
    both.same("POST", "experiments/create", {"name": "charts"}, ids={"exp": "experiment_id"})
    for name, count in (("a", 23), ("b", 5)):
        both.same("POST", "runs/create", {"experiment_id": "{exp}", "run_name": name, "start_time": 1700000000000}, ids={name: "run.info.run_id"})
        metrics = [{"key": "loss", "value": 1.0 / (i + 1), "timestamp": 1700000000000 + i, "step": i // 2} for i in range(count)]
        metrics.append({"key": "other", "value": 3.0, "timestamp": 1700000000000, "step": 0})
        both.same("POST", "runs/log-batch", {"run_id": "{%s}" % name, "metrics": metrics})
    history = lambda **query: both.same("GET", "metrics/get-history-bulk-interval", {"metric_key": "loss", **query})  # noqa: E731
    history(run_ids=["{a}", "{b}"])
    for max_results in (1, 2, 3, 4, 7, 10, 2500, 0, 2501):
        history(run_ids=["{a}", "{b}"], max_results=str(max_results))
    history(run_ids=["{b}", "{a}"], max_results="4", start_step="2", end_step="8")
    history(run_ids=["{a}"], start_step="3")  # one bound only
    history(run_ids=["{a}"], start_step="5", end_step="2")
    history(run_ids=["{a}"], metric_key="missing")
    history(run_ids=["{a}", "123456789"])
    history(run_ids=["{a}"] * 101)
def test_default_experiment_and_latest_metric_answer_as_mlflows_server(sqlite_server, mlflow_server):
    both = Both(sqlite_server.url, mlflow_server)
    ours, theirs = both.call("GET", "experiments/get", {"experiment_id": "0"})
    assert ours["experiment"]["experiment_id"] == theirs["experiment"]["experiment_id"] == "0", (ours, theirs)
    assert ours["experiment"]["artifact_location"] == theirs["experiment"]["artifact_location"], (ours, theirs)
    both.same("GET", "experiments/get", {"experiment_id": "0"})
    ours, theirs = both.call("GET", "experiments/get-by-name", {"experiment_name": "Default"})
    assert ours["experiment"]["experiment_id"] == theirs["experiment"]["experiment_id"] == "0", (ours, theirs)
    ours, theirs = both.call("POST", "experiments/search", {"filter": "name = 'Default'", "max_results": 10})
    assert [e["experiment_id"] for e in ours["experiments"]] == [e["experiment_id"] for e in theirs["experiments"]] == ["0"]
    ours, theirs = both.call("POST", "runs/create", {"experiment_id": "0", "start_time": 1700000000000, "run_name": "d"},
                             ids={"run": "run.info.run_id"})
    assert ours["run"]["info"]["experiment_id"] == theirs["run"]["info"]["experiment_id"] == "0", (ours, theirs)
    # Out of order: the latest is the highest step, then timestamp, then value, not the last logged.
    for value, timestamp, step in [(0.5, 1700000000100, 5), (0.9, 1700000000200, 3), (0.4, 1700000000100, 5),
                                   (0.7, 1700000000050, 5)]:
        both.same("POST", "runs/log-metric", {"run_id": "{run}", "key": "loss", "value": value, "timestamp": timestamp, "step": step})
    batch = [{"key": "acc", "value": v, "timestamp": 1700000000300 + t, "step": s} for v, t, s in [(0.8, 0, 2), (0.1, 1, 1), (0.6, 0, 2)]]
    both.same("POST", "runs/log-batch", {"run_id": "{run}", "metrics": batch})
    both.same("GET", "runs/get", {"run_id": "{run}"})
    both.same("GET", "metrics/get-history", {"run_id": "{run}", "metric_key": "loss"})
    ours, theirs = both.call("GET", "runs/get", {"run_id": "{run}"})
    assert ours["run"]["info"]["experiment_id"] == "0" and ours["run"]["info"]["artifact_uri"].startswith("mlflow-artifacts:/0/")
    both.same("POST", "runs/search", {"experiment_ids": ["0"], "filter": "metrics.loss = 0.5"})
    both.same("POST", "runs/search", {"experiment_ids": ["0"], "filter": "metrics.acc = 0.8"})
