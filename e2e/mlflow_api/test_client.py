"""MLflow's own client (mlflow 3.17.2, `MlflowClient`) against the model registry, on SQLite,
MariaDB and PostgreSQL: every call of the model registry API, its errors as MLflow's exceptions
and codes, search filters and ordering, paging, and a pyfunc model loaded by alias.
"""

from __future__ import annotations

import uuid

import pytest
import requests
from mlflow.exceptions import MlflowException


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_code(excinfo) -> str:
    return excinfo.value.error_code


def test_registered_model_life_cycle(client):
    name = unique("clf")
    created = client.create_registered_model(
        name, tags={"team": "fraud", "tier": "1"}, description="credit card fraud"
    )
    assert created.name == name
    assert created.description == "credit card fraud"
    assert created.tags == {"team": "fraud", "tier": "1"}
    assert created.creation_timestamp > 1_600_000_000_000  # milliseconds
    assert created.latest_versions == []

    got = client.get_registered_model(name)
    assert (got.name, got.description, got.tags) == (name, "credit card fraud", {"team": "fraud", "tier": "1"})

    updated = client.update_registered_model(name, description="v2 of the description")
    assert updated.description == "v2 of the description"
    assert updated.last_updated_timestamp >= created.last_updated_timestamp

    client.set_registered_model_tag(name, "team", "risk")
    client.set_registered_model_tag(name, "new", "x")
    client.delete_registered_model_tag(name, "tier")
    assert client.get_registered_model(name).tags == {"team": "risk", "new": "x"}

    with pytest.raises(MlflowException) as e:
        client.create_registered_model(name)
    assert error_code(e) == "RESOURCE_ALREADY_EXISTS"

    client.rename_registered_model(name, name + "-renamed")
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(name)
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_registered_model(name + "-renamed").tags == {"team": "risk", "new": "x"}

    other = unique("other")
    client.create_registered_model(other)
    with pytest.raises(MlflowException) as e:
        client.rename_registered_model(other, name + "-renamed")
    assert error_code(e) == "RESOURCE_ALREADY_EXISTS"

    client.delete_registered_model(name + "-renamed")
    client.delete_registered_model(other)
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(other)
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"


def test_versions_aliases_stages(client, tmp_path):
    name = unique("model")
    client.create_registered_model(name)
    sources = ["s3://bucket/models/a", f"file://{tmp_path}/model", f"models:/{name}/1"]
    versions = [
        client.create_model_version(
            name, source, run_id=f"run{i}", tags={"i": str(i)}, run_link=f"http://runs/{i}", description=f"v{i + 1}"
        )
        for i, source in enumerate(sources)
    ]
    assert [v.version for v in versions] == ["1", "2", "3"]
    v1 = client.get_model_version(name, "1")
    assert (v1.source, v1.run_id, v1.run_link, v1.description, v1.current_stage, v1.status) == (
        "s3://bucket/models/a", "run0", "http://runs/0", "v1", "None", "READY"
    )
    assert v1.tags == {"i": "0"}
    assert client.get_model_version(name, "3").source == f"models:/{name}/1"
    assert client.get_model_version_download_uri(name, "2") == f"file://{tmp_path}/model"

    assert client.update_model_version(name, "2", description="second").description == "second"
    client.set_model_version_tag(name, "2", "stage", "candidate")
    client.delete_model_version_tag(name, "2", "i")
    assert client.get_model_version(name, "2").tags == {"stage": "candidate"}

    # Aliases: set, read, move, delete.
    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    assert client.get_model_version(name, "1").aliases == ["champion"]
    client.set_registered_model_alias(name, "champion", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_model_version(name, "1").aliases == []
    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException) as e:
        client.get_model_version_by_alias(name, "champion")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_alias(name, "x", "99")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_alias(name, "latest", "1")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"
    assert client.get_model_version_by_alias(name, "latest").version == "3"

    # Stages.
    staged = client.transition_model_version_stage(name, "1", "staging")
    assert staged.current_stage == "Staging"
    client.transition_model_version_stage(name, "2", "Production")
    client.transition_model_version_stage(name, "3", "Production", archive_existing_versions=True)
    assert client.get_model_version(name, "2").current_stage == "Archived"
    latest = {v.current_stage: v.version for v in client.get_latest_versions(name)}
    assert latest == {"Staging": "1", "Production": "3", "Archived": "2"}
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["3"]
    with pytest.raises(MlflowException) as e:
        client.transition_model_version_stage(name, "1", "nowhere")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"

    # Deletes: a version (its alias goes with it), then the model.
    client.set_registered_model_alias(name, "old", "1")
    client.delete_model_version(name, "1")
    with pytest.raises(MlflowException) as e:
        client.get_model_version(name, "1")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    assert "old" not in client.get_registered_model(name).aliases
    # Numbers are never reused.
    assert client.create_model_version(name, "s3://b/4").version == "4"
    client.delete_registered_model(name)
    with pytest.raises(MlflowException) as e:
        client.get_model_version(name, "2")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"


def test_missing_things_raise_mlflows_codes(client):
    missing = unique("missing")
    for call in (
        lambda: client.get_registered_model(missing),
        lambda: client.update_registered_model(missing, description="x"),
        lambda: client.delete_registered_model(missing),
        lambda: client.get_model_version(missing, "1"),
        lambda: client.create_model_version(missing, "s3://x"),
        lambda: client.get_latest_versions(missing),
        lambda: client.set_registered_model_tag(missing, "k", "v"),
    ):
        with pytest.raises(MlflowException) as e:
            call()
        assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    name = unique("present")
    client.create_registered_model(name)
    with pytest.raises(MlflowException) as e:
        client.get_model_version(name, "7")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.delete_model_version(name, "7")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.create_registered_model("bad/name")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"


def test_search_filters_and_ordering(client):
    prefix = unique("srch")
    names = [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    for i, n in enumerate(names):
        client.create_registered_model(n, tags={"kind": "even" if i % 2 == 0 else "odd"})
        client.create_model_version(n, f"s3://bucket/{n}/v1", run_id=f"{prefix}-run{i}")

    def model_names(**kw):
        return [m.name for m in client.search_registered_models(**kw)]

    assert model_names(filter_string=f"name = '{prefix}-a'") == [f"{prefix}-a"]
    assert model_names(filter_string=f"name LIKE '{prefix}-%'") == sorted(names)
    assert model_names(filter_string=f"name ILIKE '{prefix.upper()}-C'") == [f"{prefix}-c"]
    assert model_names(filter_string=f"name LIKE '{prefix}-%' AND tags.kind = 'even'") == sorted([names[0], names[2]])
    assert model_names(filter_string=f"name LIKE '{prefix}-%'", order_by=["name DESC"]) == sorted(names, reverse=True)
    by_update = model_names(filter_string=f"name LIKE '{prefix}-%'", order_by=["last_updated_timestamp DESC"])
    assert by_update == list(reversed(names))

    def versions(**kw):
        return [(v.name, v.version) for v in client.search_model_versions(**kw)]

    assert versions(filter_string=f"name = '{prefix}-b'") == [(f"{prefix}-b", "1")]
    assert versions(filter_string=f"run_id = '{prefix}-run2'") == [(f"{prefix}-c", "1")]
    assert versions(filter_string=f"source_path = 's3://bucket/{prefix}-a/v1'") == [(f"{prefix}-a", "1")]
    assert len(versions(filter_string=f"name LIKE '{prefix}-%' AND version_number = 1")) == 3
    assert versions(filter_string=f"name LIKE '{prefix}-%' AND run_id IN ('{prefix}-run0', '{prefix}-run1')",
                    order_by=["creation_timestamp ASC"]) == [(names[0], "1"), (names[1], "1")]
    client.set_model_version_tag(names[1], "1", "validated", "yes")
    assert versions(filter_string="tags.validated = 'yes' AND name LIKE '" + prefix + "%'") == [(names[1], "1")]

    for bad in ("name = 'a' OR name = 'b'", "nonsense = 'x'", "name = unquoted"):
        with pytest.raises(MlflowException) as e:
            client.search_registered_models(filter_string=bad)
        assert error_code(e) == "INVALID_PARAMETER_VALUE", bad


def test_paging_250_versions(client):
    name = unique("paged")
    client.create_registered_model(name)
    for i in range(250):
        client.create_model_version(name, f"s3://bucket/{name}/{i}")
    seen, token, pages = [], None, 0
    while True:
        page = client.search_model_versions(
            f"name = '{name}'", max_results=100, order_by=["version_number ASC"], page_token=token
        )
        pages += 1
        seen.extend(int(v.version) for v in page)
        token = page.token
        if not token:
            break
    assert pages == 3
    assert seen == list(range(1, 251))


def test_pyfunc_loads_by_alias(mr_server, tmp_path):
    import mlflow
    import mlflow.pyfunc

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [2 * x for x in model_input]

    path = tmp_path / "doubler"
    mlflow.pyfunc.save_model(str(path), python_model=Doubler())
    name = unique("doubler")
    client = mlflow.MlflowClient(registry_uri=mr_server.base_url)
    client.create_registered_model(name)
    version = client.create_model_version(name, f"file://{path}")
    client.set_registered_model_alias(name, "champion", version.version)
    mlflow.set_registry_uri(mr_server.base_url)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
        assert list(model.predict([1, 2, 3])) == [2, 4, 6]
    finally:
        mlflow.set_registry_uri(None)


def test_ajax_prefix_and_error_body(mr_server):
    name = unique("ajax")
    r = requests.post(mr_server.base_url + "/ajax-api/2.0/mlflow/registered-models/create", json={"name": name})
    assert r.status_code == 200, r.text
    r = requests.get(mr_server.base_url + "/ajax-api/2.0/mlflow/registered-models/get", params={"name": name + "x"})
    assert r.status_code == 404
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.get(mr_server.base_url + "/api/2.0/mlflow/no-such-endpoint")
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"

