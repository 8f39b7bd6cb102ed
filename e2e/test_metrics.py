"""`GET /metrics` parses with the Prometheus project's own Python parser and counts exactly.

The server writes OpenMetrics text (its content type says so), which Prometheus scrapes as such;
it is parsed here with `prometheus_client.openmetrics.parser`, which checks the format strictly
(types, `_total` counters, histogram buckets, `# EOF`). One server on a fresh SQLite database
(conftest.py's `_Instance`). Marked `v1`: prometheus-client is pinned in e2e/requirements-v1.txt
(.venv-v1) only.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter

import pytest

from conftest import _Instance

pytestmark = pytest.mark.v1

V1 = "/api/model_registry/v1"


@pytest.fixture(scope="module")
def mr_server():
    """This module's server, SQLite only (overrides conftest's, so failures get its log)."""
    inst = _Instance("sqlite", "metrics tests")
    try:
        yield inst.start()
    finally:
        inst.stop()


def call(server, method: str, path: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def scrape(server) -> dict:
    # Imported here: the v1alpha3 venv, where this module is deselected, does not have it.
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    with urllib.request.urlopen(server.base_url + "/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("application/openmetrics-text")
        text = r.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def by_request(family, sample_name: str) -> Counter:
    return Counter({
        (s.labels["method"], s.labels["route"], s.labels["status"]): int(s.value)
        for s in family.samples
        if s.name == sample_name and not s.labels["route"].startswith("/readyz/")
        and s.labels.get("le", "+Inf") == "+Inf"
    })


def test_metrics_parse_and_count_each_request_by_route_template(mr_server):
    statuses = [
        call(mr_server, "POST", f"{V1}/registered_models", {"name": "metrics-a"}),
        call(mr_server, "GET", f"{V1}/registered_models/1"),
        call(mr_server, "GET", f"{V1}/registered_models/424242"),
        call(mr_server, "GET", "/no/such/path/7"),
    ]
    assert statuses == [201, 200, 404, 404]
    scrape(mr_server)  # counted by the next scrape
    families = scrape(mr_server)

    types = {name: f.type for name, f in families.items()}
    assert types == {
        "model_registry_build": "info",
        "model_registry_http_requests": "counter",
        "model_registry_http_request_duration_seconds": "histogram",
        "model_registry_http_requests_in_flight": "gauge",
        "model_registry_schema_version": "gauge",
        "model_registry_schema_dirty": "gauge",
        "model_registry_db_queries": "counter",
        "model_registry_db_query_seconds": "counter",
        "model_registry_db_commits": "counter",
        "model_registry_db_committed_writes": "counter",
        "model_registry_db_pool_connections": "gauge",
        "model_registry_db_pool_idle_connections": "gauge",
        "model_registry_db_pool_waiting": "gauge",
    }
    expected = Counter({
        ("POST", f"{V1}/registered_models", "201"): 1,
        ("GET", f"{V1}/registered_models/{{id}}", "200"): 1,
        ("GET", f"{V1}/registered_models/{{id}}", "404"): 1,
        ("GET", "unmatched", "404"): 1,
        ("GET", "/metrics", "200"): 1,
    })
    assert by_request(families["model_registry_http_requests"], "model_registry_http_requests_total") == expected
    # The create committed; on SQLite several writes may share a commit, never the other way round.
    commits = families["model_registry_db_commits"].samples[0].value
    writes = families["model_registry_db_committed_writes"].samples[0].value
    assert 1 <= commits <= writes
    latency = families["model_registry_http_request_duration_seconds"]
    assert by_request(latency, "model_registry_http_request_duration_seconds_count") == expected
    assert by_request(latency, "model_registry_http_request_duration_seconds_bucket") == expected
    assert families["model_registry_schema_dirty"].samples[0].value == 0
    assert families["model_registry_schema_version"].samples[0].value > 0
    kinds = {s.labels["kind"] for s in families["model_registry_db_queries"].samples}
    assert {"select", "insert", "update", "delete"} <= kinds
