"""End-to-end tests: the official Kubeflow Model Registry Python client against the real server.

Every test runs once per backend (sqlite, mysql, postgres; see conftest.py). Tests on the shared
`mr_server` use unique names; the tests that need exact list contents and orderings get an
empty database of their own (`fresh_mr_server`).

The client is driven through its public API only:
- `model_registry.ModelRegistry` (the sync client: register_model, get_*, update, pagers);
- `model_registry.core.ModelRegistryAPIClient` (the async API underneath it) with
  `model_registry.types` (RegisteredModel, ModelVersion, ModelArtifact, DocArtifact, ListOptions,
  Pager);
- `ModelRegistryAPIClient.get_client()`, i.e. the generated `mr_openapi.ModelRegistryServiceApi`
  shipped in the same package, for the serving endpoints that the high-level client does not
  wrap (serving environments, inference services, serves).
A few raw-HTTP checks (urllib) cover what the client hides: 201 vs 200 of the nested artifact
upsert, the error body `{"code", "message"}`, 404/409/400 statuses, the list envelope and the
page token format.

The suite runs with the client of the venv (clientinfo.py): model-registry 0.3.14 speaks
/api/model_registry/v1alpha3, 0.3.18 speaks /api/model_registry/v1; the raw-HTTP checks use the
same prefix as the client. v1 has no experiment tracking: the tests marked `experiments` are
deselected with a v1 client; those marked `v1` (what differs in v1) with a v1alpha3 client. The
generated models differ in `Metric.step` (int on v1alpha3, decimal text on v1): `STEP()` builds it.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import itertools
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, NamedTuple

import mr_openapi as oa
import pytest
from model_registry import ModelRegistry
from model_registry.core import ModelRegistryAPIClient
from model_registry.exceptions import StoreError
from model_registry.types import (
    ArtifactState,
    ArtifactTypeQueryParam,
    DataSet,
    DocArtifact,
    ListOptions,
    Metric,
    ModelArtifact,
    ModelVersion,
    ModelVersionState,
    Pager,
    Parameter,
    RegisteredModel,
    RegisteredModelState,
)
from mr_openapi import ArtifactTypeQueryParam as ArtType
from mr_openapi import (
    ExecutionState,
    InferenceService,
    InferenceServiceCreate,
    InferenceServiceState,
    InferenceServiceUpdate,
    ParameterType,
    ServeModelCreate,
    ServingEnvironmentCreate,
)
from mr_openapi import exceptions as mr_exc

from clientinfo import API, API_V1, API_V1ALPHA3, CLIENT_VERSION, HAS_EXPERIMENTS, IS_V1

ID_RE = re.compile(r"^[1-9][0-9]*$")
MS_RE = re.compile(r"^[0-9]+$")


# --------------------------------------------------------------------------- helpers


def uniq(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def is_id(v: Any) -> bool:
    return isinstance(v, str) and bool(ID_RE.match(v))


def is_ms(v: Any) -> bool:
    return isinstance(v, str) and bool(MS_RE.match(v)) and int(v) > 1_500_000_000_000


def tick() -> None:
    """Make the next write land in a later millisecond (times are epoch ms)."""
    time.sleep(0.012)


def assert_props(actual: dict | None, expected: dict) -> None:
    """Custom properties equal, with the Python types preserved (True is not 1, 0.5 is not '0.5')."""
    actual = actual or {}
    assert actual == expected, f"custom properties: got {actual!r}, want {expected!r}"
    for k, v in expected.items():
        assert type(actual[k]) is type(v), f"custom property {k!r}: got {actual[k]!r} ({type(actual[k]).__name__}), want {v!r}"


def new_client(srv) -> ModelRegistry:
    host, port = srv
    return ModelRegistry(f"http://{host}", port, author="e2e", is_secure=False)


def async_api(srv) -> ModelRegistryAPIClient:
    host, port = srv
    return ModelRegistryAPIClient.insecure_connection(f"http://{host}", port)


def drain(pager, expected_len: int) -> list:
    """Iterate a pager, guarding against a pager that never stops (a server paging bug)."""
    cap = 3 * expected_len + 10
    out = list(itertools.islice(pager, cap))
    assert len(out) < cap, f"pager did not stop after {cap} items: the server's nextPageToken never ends the list"
    return out


async def adrain(pager, expected_len: int) -> list:
    cap = 3 * expected_len + 10
    out = []
    async for item in pager:
        out.append(item)
        assert len(out) < cap, f"async pager did not stop after {cap} items"
    return out


class Resp(NamedTuple):
    request: str
    status: int
    headers: dict
    text: str

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            raise AssertionError(f"{self.request} -> {self.status}: body is not JSON: {self.text!r}") from None

    def __str__(self) -> str:
        return f"{self.request} -> {self.status} {self.text.strip()!r}"


def http(srv, method: str, path: str, body: Any = None, query: dict | None = None, prefix: str = API) -> Resp:
    """A raw request to <prefix>/path (the client's API prefix unless given); never raises on an HTTP status."""
    host, port = srv
    url = f"http://{host}:{port}{prefix}{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Accept": "application/json", "Content-Type": "application/json"})
    desc = f"{method} {prefix}{path}{'?' + urllib.parse.urlencode(query) if query else ''}"
    if body is not None:
        desc += f" {json.dumps(body)}"
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return Resp(desc, r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode())
    except urllib.error.HTTPError as e:
        return Resp(desc, e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode())


def expect(resp: Resp, status: int) -> Any:
    assert resp.status == status, f"want {status}: {resp}"
    return resp.json


def assert_error(resp: Resp, status: int, code: str) -> dict:
    assert resp.status == status, f"want {status} {code}: {resp}"
    assert resp.headers.get("content-type", "").startswith("application/json"), f"error content-type: {resp.headers}: {resp}"
    body = resp.json
    assert isinstance(body, dict) and set(body) == {"code", "message"}, f"error body must be {{code, message}}: {resp}"
    assert body["code"] == code, f"error code: want {code!r}: {resp}"
    assert isinstance(body["message"], str) and body["message"], f"error message empty: {resp}"
    return body


def register(client: ModelRegistry, name: str, version: str, uri: str | None = None, **kw):
    kw.setdefault("model_format_name", "onnx")
    kw.setdefault("model_format_version", "1")
    return client.register_model(name, uri or f"s3://bucket/{name}/{version}", version=version, **kw)


@pytest.fixture
def client(mr_server) -> ModelRegistry:
    return new_client(mr_server)


ORDERS = {
    # pager method name -> sort key over the server-reported fields
    None: lambda it: int(it.id),  # server default: ID
    "order_by_id": lambda it: int(it.id),
    "order_by_creation_time": lambda it: (int(it.create_time_since_epoch), int(it.id)),
    "order_by_update_time": lambda it: (int(it.last_update_time_since_epoch), int(it.id)),
}


def configure(pager: Pager, order: str | None, desc: bool, size: int | None) -> Pager:
    if order:
        getattr(pager, order)()
    if desc:
        pager.descending()
    else:
        pager.ascending()
    if size:
        pager.page_size(size)
    return pager


def check_pager_matrix(make_pager, truth: list, label: str) -> None:
    """Every ordering x direction x page size yields every item exactly once, in order."""
    n = len(truth)
    assert n >= 5
    for order, key in ORDERS.items():
        for desc in (False, True):
            want = [it.id for it in sorted(truth, key=key, reverse=desc)]
            # no limit (one page), single items, a short last page, exactly one full page, more than all
            for size in (None, 1, 4, n, n + 1):
                pager = configure(make_pager(), order, desc, size)
                got = [it.id for it in drain(pager, n)]
                what = f"{label}: order={order or 'default'} {'DESC' if desc else 'ASC'} page_size={size}"
                assert len(got) == len(set(got)), f"{what}: duplicates in {got}"
                assert got == want, f"{what}: got ids {got}, want {want}"
                if size == 4:  # a restarted pager yields the same sequence again
                    assert [it.id for it in drain(pager.restart(), n)] == want, f"{what}: after restart()"


# --------------------------------------------------------------------------- sync client


def test_empty_registry(fresh_mr_server):
    client = new_client(fresh_mr_server)  # the constructor probes GET /registered_models?pageSize=1
    assert drain(client.get_registered_models(), 0) == []
    assert drain(client.get_registered_models().page_size(2).descending(), 0) == []
    assert client.get_registered_model("absent") is None
    body = expect(http(fresh_mr_server, "GET", "/registered_models"), 200)
    assert body == {"items": [], "nextPageToken": "", "pageSize": 0, "size": 0}, body


def test_register_model_roundtrip(client, mr_server):
    name = uniq("roundtrip")
    meta = {"s": "text \u2713", "empty": "", "i": 42, "neg": -7, "zero": 0, "f": 0.95, "nf": -1.5,
            "t": True, "b": False}
    rm = client.register_model(
        name, "s3://bucket/path/model.onnx", version="v1",
        model_format_name="onnx", model_format_version="1.2",
        storage_key="aws-connection", storage_path="path/model.onnx", service_account_name="sa-reader",
        model_source_kind="kfp", model_source_class="pipelinerun", model_source_group="ns1",
        model_source_id="run-123", model_source_name="train-run",
        author="alice", owner="bob", version_description="first version", metadata=meta,
    )
    assert rm.name == name and rm.owner == "bob" and rm.state == RegisteredModelState.LIVE
    assert is_id(rm.id) and is_ms(rm.create_time_since_epoch) and is_ms(rm.last_update_time_since_epoch)
    assert rm.create_time_since_epoch == rm.last_update_time_since_epoch

    got = client.get_registered_model(name)
    assert got is not None and got.id == rm.id and got.name == name and got.owner == "bob"
    assert got.state == RegisteredModelState.LIVE and got.create_time_since_epoch == rm.create_time_since_epoch

    mv = client.get_model_version(name, "v1")
    assert mv is not None and is_id(mv.id)
    assert mv.name == "v1" and mv.author == "alice" and mv.description == "first version"
    assert mv.state == ModelVersionState.LIVE and mv.registered_model_id == rm.id
    assert is_ms(mv.create_time_since_epoch) and is_ms(mv.last_update_time_since_epoch)
    assert_props(mv.custom_properties, meta)

    ma = client.get_model_artifact(name, "v1")
    assert ma is not None and is_id(ma.id) and ma.name == name
    assert ma.uri == "s3://bucket/path/model.onnx"
    assert (ma.model_format_name, ma.model_format_version) == ("onnx", "1.2")
    assert (ma.storage_key, ma.storage_path, ma.service_account_name) == ("aws-connection", "path/model.onnx", "sa-reader")
    assert (ma.model_source_kind, ma.model_source_class, ma.model_source_group, ma.model_source_id,
            ma.model_source_name) == ("kfp", "pipelinerun", "ns1", "run-123", "train-run")
    assert ma.state == ArtifactState.UNKNOWN  # the client sends its default state
    assert not ma.custom_properties

    # the wire format behind it
    v = expect(http(mr_server, "GET", f"/model_versions/{mv.id}"), 200)
    assert v["customProperties"]["i"] == {"metadataType": "MetadataIntValue", "int_value": "42"}, v
    assert v["customProperties"]["f"] == {"metadataType": "MetadataDoubleValue", "double_value": 0.95}, v
    assert v["customProperties"]["t"] == {"metadataType": "MetadataBoolValue", "bool_value": True}, v
    assert v["customProperties"]["s"] == {"metadataType": "MetadataStringValue", "string_value": "text \u2713"}, v
    vers = expect(http(mr_server, "GET", f"/registered_models/{rm.id}/versions"), 200)
    assert vers["size"] == 1 and [i["id"] for i in vers["items"]] == [mv.id], vers
    arts = expect(http(mr_server, "GET", f"/model_versions/{mv.id}/artifacts"), 200)
    assert arts["size"] == 1 and arts["items"][0]["id"] == ma.id, arts
    assert arts["items"][0]["artifactType"] == "model-artifact", arts


def test_register_versions_and_duplicate_version(client):
    name = uniq("dup")
    rm1 = register(client, name, "v1", uri="s3://b/one")
    with pytest.warns(DeprecationWarning):  # the old spelling of version_description
        rm2 = register(client, name, "v2", uri="s3://b/two", description="old-style description")
    assert rm1.id == rm2.id, "a second version must reuse the registered model"
    assert client.get_model_version(name, "v2").description == "old-style description"
    assert client.get_model_artifact(name, "v1").uri == "s3://b/one"
    assert client.get_model_artifact(name, "v2").uri == "s3://b/two"

    with pytest.raises(StoreError, match="already exists"):
        register(client, name, "v1", uri="s3://b/other")
    # nothing changed
    versions = drain(client.get_model_versions(name), 2)
    assert sorted(v.name for v in versions) == ["v1", "v2"]
    assert client.get_model_artifact(name, "v1").uri == "s3://b/one"


def test_absent_lookups(client, mr_server):
    name = uniq("absent")
    assert client.get_registered_model(name) is None
    # The client's own "no such model" (the server answered 404), not any other StoreError.
    absent = f"^Model {re.escape(name)} does not exist$"
    with pytest.raises(StoreError, match=absent):
        client.get_model_version(name, "v1")
    with pytest.raises(StoreError, match=absent):
        client.get_model_versions(name)
    # a model without versions lists none
    bare = uniq("bare")
    asyncio.run(async_api(mr_server).upsert_registered_model(RegisteredModel(name=bare)))
    assert drain(client.get_model_versions(bare), 0) == []
    assert drain(client.get_model_versions(bare).page_size(1), 0) == []
    assert client.get_model_version(bare, "v1") is None
    register(client, name, "v1")
    assert client.get_model_version(name, "nope") is None
    with pytest.raises(StoreError):
        client.get_model_artifact(name, "nope")


def test_names_and_values_edge_cases(client, mr_server):
    """Names with ':' and non-ASCII text, dotted property keys, int and double extremes, long text."""
    name = uniq("mod\u00e8le") + " \u2713"
    version = "v:1.0-beta"
    long_desc = ("d\u00e9j\u00e0 vu " * 500).strip()
    meta = {"mlflow.source.type": "notebook", "key with space": "x", "max9": 999999999, "min9": -999999999,
            "tiny": 1e-7, "sum": 0.1 + 0.2, "big": 1.5e300, "neg": -2.5e-300}
    rm = client.register_model(name, "s3://b/k?x=1&y=%20", version=version, model_format_name="onnx",
                               model_format_version="1", version_description=long_desc, metadata=meta)
    assert rm.name == name
    assert client.get_registered_model(name).id == rm.id
    mv = client.get_model_version(name, version)
    assert mv is not None and mv.name == version and mv.description == long_desc
    assert_props(mv.custom_properties, meta)
    ma = client.get_model_artifact(name, version)
    assert ma is not None and ma.name == name and ma.uri == "s3://b/k?x=1&y=%20"
    assert [v.name for v in drain(client.get_model_versions(name), 1)] == [version]
    raw = expect(http(mr_server, "GET", "/model_version", query={"name": version, "parentResourceId": rm.id}), 200)
    assert raw["name"] == version and raw["id"] == mv.id


def test_top_level_name_with_colon(client, mr_server):
    """Registered model names are stored as given: a ':' in them is not a parent prefix."""
    name = "team:" + uniq("model")
    rm = register(client, name, "v1")
    assert rm.name == name
    got = client.get_registered_model(name)
    assert got is not None and got.id == rm.id and got.name == name
    raw = expect(http(mr_server, "GET", f"/registered_models/{rm.id}"), 200)
    assert raw["name"] == name, raw
    assert client.get_model_artifact(name, "v1").name == name  # the artifact is named after the model
    se = expect(http(mr_server, "POST", "/serving_environments", {"name": "env:" + uniq("se")}), 201)
    assert se["name"].startswith("env:"), se


def test_update_registered_model(client):
    name = uniq("upd-rm")
    rm = register(client, name, "v1")
    created = rm.create_time_since_epoch
    tick()
    ext = uniq("ext")
    rm.description = "a model"
    rm.external_id = ext
    rm.custom_properties = {"team": "ml", "n": 3, "ratio": 0.25, "ok": True}
    rm.state = RegisteredModelState.ARCHIVED
    out = client.update(rm)
    assert out.id == rm.id and out.name == name
    assert out.description == "a model" and out.external_id == ext and out.owner == "e2e"
    assert out.state == RegisteredModelState.ARCHIVED
    assert_props(out.custom_properties, {"team": "ml", "n": 3, "ratio": 0.25, "ok": True})
    assert out.create_time_since_epoch == created
    assert int(out.last_update_time_since_epoch) > int(created)

    got = client.get_registered_model(name)
    assert got.state == RegisteredModelState.ARCHIVED and got.description == "a model" and got.external_id == ext
    assert_props(got.custom_properties, {"team": "ml", "n": 3, "ratio": 0.25, "ok": True})
    assert got.last_update_time_since_epoch == out.last_update_time_since_epoch

    # custom properties are replaced as a whole; state back to LIVE
    got.custom_properties = {"n": 4}
    got.state = RegisteredModelState.LIVE
    out2 = client.update(got)
    assert out2.state == RegisteredModelState.LIVE and out2.description == "a model"
    assert_props(out2.custom_properties, {"n": 4})
    again = client.get_registered_model(name)
    assert again.state == RegisteredModelState.LIVE
    assert_props(again.custom_properties, {"n": 4})


def test_update_model_version(client):
    name = uniq("upd-mv")
    rm = register(client, name, "v1", author="carol", version_description="orig", metadata={"a": 1})
    mv = client.get_model_version(name, "v1")
    tick()
    mv.state = ModelVersionState.ARCHIVED
    mv.description = "changed"
    mv.custom_properties = {"b": "two", "c": 3.5}
    out = client.update(mv)
    assert out.id == mv.id and out.name == "v1" and out.state == ModelVersionState.ARCHIVED
    assert out.description == "changed" and out.author == "carol" and out.registered_model_id == rm.id
    assert_props(out.custom_properties, {"b": "two", "c": 3.5})
    assert int(out.last_update_time_since_epoch) > int(mv.create_time_since_epoch)

    got = client.get_model_version(name, "v1")
    assert got.state == ModelVersionState.ARCHIVED and got.description == "changed" and got.author == "carol"
    assert got.registered_model_id == rm.id
    assert_props(got.custom_properties, {"b": "two", "c": 3.5})
    # the registered model is untouched
    assert client.get_registered_model(name).state == RegisteredModelState.LIVE


def test_update_model_artifact(client):
    name = uniq("upd-ma")
    register(client, name, "v1", uri="s3://b/old", model_format_name="onnx", model_format_version="1",
             storage_key="key", storage_path="p/old")
    ma = client.get_model_artifact(name, "v1")
    tick()
    ma.uri = "s3://b/new"
    ma.model_format_version = "2"
    ma.state = ArtifactState.LIVE
    ma.description = "artifact"
    ma.custom_properties = {"size": 10, "sha": "abc"}
    out = client.update(ma)
    assert out.id == ma.id and out.name == name
    assert out.uri == "s3://b/new" and out.model_format_version == "2" and out.model_format_name == "onnx"
    assert out.state == ArtifactState.LIVE and out.description == "artifact"
    assert out.storage_key == "key" and out.storage_path == "p/old"
    assert_props(out.custom_properties, {"size": 10, "sha": "abc"})

    got = client.get_model_artifact(name, "v1")
    assert got.id == ma.id and got.uri == "s3://b/new" and got.state == ArtifactState.LIVE
    assert got.model_format_version == "2" and got.description == "artifact" and got.storage_path == "p/old"
    assert_props(got.custom_properties, {"size": 10, "sha": "abc"})
    assert int(got.last_update_time_since_epoch) > int(got.create_time_since_epoch)

    got.state = ArtifactState.DELETED
    assert client.update(got).state == ArtifactState.DELETED
    assert client.get_model_artifact(name, "v1").state == ArtifactState.DELETED


def test_archive_flow(client):
    name = uniq("archive")
    register(client, name, "v1")
    register(client, name, "v2")
    v1 = client.get_model_version(name, "v1")
    v1.state = ModelVersionState.ARCHIVED
    client.update(v1)
    states = {v.name: v.state for v in drain(client.get_model_versions(name), 2)}
    assert states == {"v1": ModelVersionState.ARCHIVED, "v2": ModelVersionState.LIVE}

    rm = client.get_registered_model(name)
    rm.state = RegisteredModelState.ARCHIVED
    client.update(rm)
    assert client.get_registered_model(name).state == RegisteredModelState.ARCHIVED
    # versions stay readable, and their own states are untouched
    assert client.get_model_version(name, "v2").state == ModelVersionState.LIVE
    assert client.get_model_artifact(name, "v1") is not None
    # the archived model still appears in listings, archived
    listed = {m.id: m for m in drain(client.get_registered_models(), 10_000)}
    assert listed[rm.id].state == RegisteredModelState.ARCHIVED

    # registering a new version under an archived model reuses it and leaves it archived
    again = register(client, name, "v3")
    assert again.id == rm.id
    assert client.get_model_version(name, "v3").state == ModelVersionState.LIVE
    assert client.get_registered_model(name).state == RegisteredModelState.ARCHIVED

    # restore
    rm = client.get_registered_model(name)
    rm.state = RegisteredModelState.LIVE
    assert client.update(rm).state == RegisteredModelState.LIVE
    v1 = client.get_model_version(name, "v1")
    v1.state = ModelVersionState.LIVE
    assert client.update(v1).state == ModelVersionState.LIVE
    assert {v.state for v in drain(client.get_model_versions(name), 3)} == {ModelVersionState.LIVE}


def test_registered_models_pager(fresh_mr_server):
    """Exact contents and order of get_registered_models() on an empty database."""
    client = new_client(fresh_mr_server)
    names = [f"pg-{i}" for i in range(6)]
    for n in names:
        register(client, n, "v1")
        tick()
    # permute the update times: LAST_UPDATE_TIME order differs from id/create order
    for i in (3, 0, 5, 1, 4, 2):
        rm = client.get_registered_model(names[i])
        rm.description = f"touched {i}"
        client.update(rm)
        tick()

    truth = drain(client.get_registered_models(), 6)
    assert sorted(m.name for m in truth) == names
    creates = [int(m.create_time_since_epoch) for m in sorted(truth, key=lambda m: int(m.id))]
    assert creates == sorted(creates) and len(set(creates)) == 6, f"create times: {creates}"
    by_update = [m.name for m in sorted(truth, key=lambda m: int(m.last_update_time_since_epoch))]
    assert by_update == [names[i] for i in (3, 0, 5, 1, 4, 2)], "lastUpdateTimeSinceEpoch must follow the updates"

    check_pager_matrix(client.get_registered_models, truth, "registered models")


def test_model_versions_pager(client):
    """get_model_versions(name): only that model's versions, every ordering and page size."""
    name, other = uniq("mvpg"), uniq("mvpg-other")
    versions = [f"{i}.0" for i in range(6)]
    for v in versions:
        register(client, name, v)
        tick()
    register(client, other, "1.0")
    register(client, other, "2.0")
    for i in (5, 1, 0, 2, 4, 3):
        mv = client.get_model_version(name, versions[i])
        mv.description = f"touched {i}"
        client.update(mv)
        tick()

    truth = drain(client.get_model_versions(name), 6)
    assert sorted(v.name for v in truth) == versions
    assert {v.registered_model_id for v in truth} == {client.get_registered_model(name).id}
    check_pager_matrix(lambda: client.get_model_versions(name), truth, "model versions")
    assert sorted(v.name for v in drain(client.get_model_versions(other), 2)) == ["1.0", "2.0"]


def test_registered_models_pager_matches_raw_listing(client, mr_server):
    """On the shared database: the pager agrees with one unpaged GET, in both directions."""
    register(client, uniq("raw-a"), "v1")
    register(client, uniq("raw-b"), "v1")
    raw = expect(http(mr_server, "GET", "/registered_models"), 200)
    assert raw["size"] == len(raw["items"]) and raw["pageSize"] == 0 and raw["nextPageToken"] == "", {
        k: raw[k] for k in ("size", "pageSize", "nextPageToken")}
    ids = [m["id"] for m in raw["items"]]
    assert ids == sorted(ids, key=int), "default order is id ASC"
    for size in (1, 4):
        got = [m.id for m in drain(client.get_registered_models().page_size(size), len(ids))]
        assert got == ids, f"page_size={size}"
        got = [m.id for m in drain(client.get_registered_models().page_size(size).descending(), len(ids))]
        assert got == ids[::-1], f"page_size={size} DESC"


# --------------------------------------------------------------------------- async API


@pytest.mark.asyncio
async def test_async_api_crud(mr_server):
    api = async_api(mr_server)
    name, ext = uniq("async"), uniq("async-ext")
    rm = await api.upsert_registered_model(
        RegisteredModel(name=name, owner="owner-a", description="d", external_id=ext, custom_properties={"a": 1}))
    assert is_id(rm.id) and rm.name == name and rm.owner == "owner-a" and rm.external_id == ext
    assert rm.state == RegisteredModelState.LIVE
    assert_props(rm.custom_properties, {"a": 1})
    assert (await api.get_registered_model_by_id(rm.id)).name == name
    assert (await api.get_registered_model_by_params(name)).id == rm.id
    assert (await api.get_registered_model_by_params(external_id=ext)).id == rm.id
    assert await api.get_registered_model_by_id("999999999") is None
    assert await api.get_registered_model_by_params(uniq("nope")) is None
    assert await api.get_registered_model_by_params(external_id=uniq("nope")) is None

    mv_ext = uniq("mv-ext")
    mv = await api.upsert_model_version(
        ModelVersion(name="v1", author="auth", description="ver", external_id=mv_ext, custom_properties={"x": 0.5}),
        rm.id)
    assert is_id(mv.id) and mv.name == "v1" and mv.registered_model_id == rm.id and mv.author == "auth"
    assert mv.state == ModelVersionState.LIVE and mv.external_id == mv_ext
    assert_props(mv.custom_properties, {"x": 0.5})
    assert (await api.get_model_version_by_id(mv.id)).name == "v1"
    assert (await api.get_model_version_by_params(rm.id, "v1")).id == mv.id
    assert (await api.get_model_version_by_params(external_id=mv_ext)).id == mv.id
    assert await api.get_model_version_by_params(rm.id, "v2") is None
    assert await api.get_model_version_by_id("999999999") is None

    ma = await api.upsert_model_version_artifact(
        ModelArtifact(name="weights", uri="s3://b/w", model_format_name="onnx", model_format_version="1",
                      custom_properties={"s": "x"}), mv.id)
    assert isinstance(ma, ModelArtifact) and is_id(ma.id) and ma.name == "weights" and ma.uri == "s3://b/w"
    assert_props(ma.custom_properties, {"s": "x"})
    doc = await api.upsert_model_version_artifact(
        DocArtifact(name="readme", uri="https://example.invalid/readme.md", description="doc"), mv.id)
    assert isinstance(doc, DocArtifact) and is_id(doc.id) and doc.uri == "https://example.invalid/readme.md"
    assert doc.description == "doc"

    assert [a.id for a in await api.get_model_artifacts(mv.id)] == [ma.id]
    arts = await api.get_model_version_artifacts(mv.id)
    assert sorted((type(a).__name__, a.id) for a in arts) == sorted([("ModelArtifact", ma.id), ("DocArtifact", doc.id)])
    assert (await api.get_model_artifact_by_params("weights", mv.id)).id == ma.id
    assert await api.get_model_artifact_by_params("readme", mv.id) is None  # a doc artifact is not a model artifact
    assert (await api.get_model_artifact_by_id(ma.id)).uri == "s3://b/w"
    assert await api.get_model_artifact_by_id(doc.id) is None

    # nested upsert with an id updates in place
    ma.uri = "s3://b/w2"
    ma2 = await api.upsert_model_version_artifact(ma, mv.id)
    assert ma2.id == ma.id and ma2.uri == "s3://b/w2"
    # PATCH /model_artifacts/{id}
    ma2.description = "patched"
    ma3 = await api.upsert_model_artifact(ma2)
    assert ma3.id == ma.id and ma3.description == "patched" and ma3.uri == "s3://b/w2"
    assert len(await api.get_model_version_artifacts(mv.id)) == 2

    # a model artifact outside any version (POST /model_artifacts)
    sa_uri, sa_name = f"s3://b/{uniq('standalone')}", "ns:" + uniq("standalone")
    sa = await api.upsert_model_artifact(ModelArtifact(name=sa_name, uri=sa_uri, model_format_name="pt"))
    assert is_id(sa.id) and sa.uri == sa_uri and sa.model_format_name == "pt" and sa.name == sa_name
    assert (await api.get_model_artifact_by_id(sa.id)).name == sa_name
    all_ma = {a.id for a in await api.get_model_artifacts()}
    assert {ma.id, sa.id} <= all_ma and doc.id not in all_ma
    assert [a.id for a in await api.get_model_artifacts(mv.id)] == [ma.id]


@pytest.mark.asyncio
async def test_async_get_artifacts_by_type(mr_server):
    """get_artifacts(artifact_type=...): GET /artifacts?artifactType=..."""
    api = async_api(mr_server)
    rm = await api.upsert_registered_model(RegisteredModel(name=uniq("arts")))
    mv = await api.upsert_model_version(ModelVersion(name="v1"), rm.id)
    ma_uri, sa_uri = f"s3://b/{uniq('nested')}", f"s3://b/{uniq('standalone')}"
    ma = await api.upsert_model_version_artifact(ModelArtifact(name="weights", uri=ma_uri), mv.id)
    doc = await api.upsert_model_version_artifact(DocArtifact(name="readme", uri="https://example.invalid/r"), mv.id)
    sa = await api.upsert_model_artifact(ModelArtifact(name=uniq("standalone"), uri=sa_uri, model_format_name="pt",
                                                       custom_properties={"tier": "gold", "n": 5}))

    docs = await api.get_artifacts(artifact_type=ArtifactTypeQueryParam.DOC_MINUS_ARTIFACT)
    assert doc.id in {a.id for a in docs} and all(isinstance(a, DocArtifact) for a in docs)
    models = await api.get_artifacts(artifact_type=ArtifactTypeQueryParam.MODEL_MINUS_ARTIFACT)
    assert {ma.id, sa.id} <= {a.id for a in models} and all(isinstance(a, ModelArtifact) for a in models)
    everything = {a.id for a in await api.get_artifacts()}
    assert {ma.id, doc.id, sa.id} <= everything


@pytest.mark.asyncio
async def test_async_get_artifacts_filter_query(mr_server):
    """get_artifacts(filter_query=...): GET /artifacts?filterQuery=..."""
    api = async_api(mr_server)
    rm = await api.upsert_registered_model(RegisteredModel(name=uniq("filter")))
    mv = await api.upsert_model_version(ModelVersion(name="v1"), rm.id)
    ma_uri, sa_uri = f"s3://b/{uniq('nested')}", f"s3://b/{uniq('standalone')}"
    ma = await api.upsert_model_version_artifact(ModelArtifact(name="weights", uri=ma_uri), mv.id)
    sa = await api.upsert_model_artifact(ModelArtifact(name=uniq("standalone"), uri=sa_uri, model_format_name="pt",
                                                       custom_properties={"tier": "gold", "n": 5}))

    assert [a.id for a in await api.get_artifacts(filter_query=f"uri = '{sa_uri}'")] == [sa.id]
    assert [a.id for a in await api.get_artifacts(filter_query=f"uri = '{ma_uri}' OR uri = '{sa_uri}'")] == [ma.id, sa.id]
    assert [a.id for a in await api.get_artifacts(
        filter_query=f"tier = 'gold' AND n > 4 AND uri = '{sa_uri}'")] == [sa.id]
    assert [a.id for a in await api.get_artifacts(
        filter_query=f"modelFormatName = 'pt' AND uri = '{sa_uri}'",
        artifact_type=ArtifactTypeQueryParam.MODEL_MINUS_ARTIFACT)] == [sa.id]
    assert await api.get_artifacts(filter_query=f"uri = '{sa_uri}'",
                                   artifact_type=ArtifactTypeQueryParam.DOC_MINUS_ARTIFACT) == []
    with pytest.raises(mr_exc.BadRequestException):
        await api.get_artifacts(filter_query="uri <<< 'x'")


@pytest.mark.asyncio
async def test_async_api_conflicts(mr_server):
    api = async_api(mr_server)
    name, ext = uniq("conflict"), uniq("conflict-ext")
    rm = await api.upsert_registered_model(RegisteredModel(name=name, external_id=ext))
    with pytest.raises(mr_exc.ConflictException):
        await api.upsert_registered_model(RegisteredModel(name=name))
    with pytest.raises(mr_exc.ConflictException):
        await api.upsert_registered_model(RegisteredModel(name=uniq("conflict-other"), external_id=ext))
    await api.upsert_model_version(ModelVersion(name="v1"), rm.id)
    with pytest.raises(mr_exc.ConflictException):
        await api.upsert_model_version(ModelVersion(name="v1"), rm.id)
    # the same version name under another model is fine
    rm2 = await api.upsert_registered_model(RegisteredModel(name=uniq("conflict-2")))
    assert (await api.upsert_model_version(ModelVersion(name="v1"), rm2.id)).registered_model_id == rm2.id
    # externalId is unique across registered models and versions (one MLMD Context table)
    with pytest.raises(mr_exc.ConflictException):
        await api.upsert_model_version(ModelVersion(name="v-ext", external_id=ext), rm.id)
    # ... also when it is set by an update
    other = await api.upsert_registered_model(RegisteredModel(name=uniq("conflict-3")))
    other.external_id = ext
    with pytest.raises(mr_exc.ConflictException):
        await api.upsert_registered_model(other)
    assert (await api.get_registered_model_by_params(external_id=ext)).id == rm.id
    # updating an absent id is a 404
    with pytest.raises(mr_exc.NotFoundException):
        await api.upsert_registered_model(RegisteredModel(id="999999999", name="ghost"))


@pytest.mark.asyncio
async def test_async_api_concurrent_writes(mr_server):
    api = async_api(mr_server)
    prefix = uniq("conc")
    rms = await asyncio.gather(*(api.upsert_registered_model(RegisteredModel(name=f"{prefix}-{i}")) for i in range(12)))
    assert len({r.id for r in rms}) == 12 and all(is_id(r.id) for r in rms)
    parent = rms[0]
    mvs = await asyncio.gather(*(api.upsert_model_version(ModelVersion(name=f"v{i}"), parent.id) for i in range(12)))
    assert len({m.id for m in mvs}) == 12
    got = await asyncio.gather(*(api.get_registered_model_by_id(r.id) for r in rms))
    assert [g.name for g in got] == [r.name for r in rms]
    listed = await api.get_model_versions(parent.id)
    assert sorted(m.name for m in listed) == sorted(f"v{i}" for i in range(12))


@pytest.mark.asyncio
async def test_async_pager_and_list_options(mr_server):
    api = async_api(mr_server)
    rm = await api.upsert_registered_model(RegisteredModel(name=uniq("apg")))
    made = []
    for i in range(5):
        made.append(await api.upsert_model_version(ModelVersion(name=f"r{i}"), rm.id))
        tick()
    ids = [m.id for m in made]

    async def page(options: ListOptions):
        return await api.get_model_versions(rm.id, options)

    assert [m.id for m in await adrain(Pager(page).page_size(2), 5)] == ids
    assert [m.id for m in await adrain(Pager(page).order_by_creation_time().descending().page_size(3), 5)] == ids[::-1]
    assert [m.id for m in await adrain(Pager(page).order_by_id().page_size(5), 5)] == ids

    # manual paging with ListOptions: the token goes back into the options, "" at the end
    opts = ListOptions(limit=2)
    seen, tokens = [], []
    for _ in range(10):
        seen += [m.id for m in await api.get_model_versions(rm.id, opts)]
        tokens.append(opts.next_page_token)
        if not opts.next_page_token:
            break
    assert seen == ids and tokens[-1] == "" and all(tokens[:-1]) and len(tokens) == 3, tokens

    # registered models: the async pager agrees with the sync listing
    async def rm_page(options: ListOptions):
        return await api.get_registered_models(options)

    all_ids = [m["id"] for m in expect(http(mr_server, "GET", "/registered_models"), 200)["items"]]
    assert [m.id for m in await adrain(Pager(rm_page).page_size(3), len(all_ids))] == all_ids


# --------------------------------------------------------------------------- serving (generated API)


@pytest.mark.asyncio
async def test_serving_flow(mr_server):
    api = async_api(mr_server)
    rm = await api.upsert_registered_model(RegisteredModel(name=uniq("served")))
    v1 = await api.upsert_model_version(ModelVersion(name="v1"), rm.id)
    tick()
    v2 = await api.upsert_model_version(ModelVersion(name="v2"), rm.id)
    async with api.get_client() as svc:
        r = await svc.create_serving_environment_with_http_info(
            ServingEnvironmentCreate(name=uniq("env"), description="env"))
        assert r.status_code == 201
        se = r.data
        assert is_id(se.id) and se.description == "env"
        assert (await svc.find_serving_environment(name=se.name)).id == se.id
        assert (await svc.get_serving_environment(se.id)).name == se.name
        assert se.id in {e.id for e in (await svc.get_serving_environments()).items}

        r = await svc.create_inference_service_with_http_info(InferenceServiceCreate(
            name=uniq("isvc"), registeredModelId=rm.id, servingEnvironmentId=se.id, runtime="kserve"))
        # upstream answers 201 although the spec (and so this generated client) says 200: the client
        # then ignores the body (r.data is None), so it is parsed here
        assert r.status_code == 201
        isvc = InferenceService.from_json(r.raw_data.decode())
        assert is_id(isvc.id) and isvc.registered_model_id == rm.id and isvc.serving_environment_id == se.id
        assert isvc.desired_state == InferenceServiceState.DEPLOYED and isvc.runtime == "kserve"
        assert isvc.model_version_id is None
        assert (await svc.get_inference_service_model(isvc.id)).id == rm.id
        assert (await svc.get_inference_service_version(isvc.id)).id == v2.id  # latest version of the model

        r = await svc.create_environment_inference_service_with_http_info(se.id, InferenceServiceCreate(
            registeredModelId=rm.id, servingEnvironmentId=se.id, modelVersionId=v1.id))
        assert r.status_code == 201
        is2 = r.data
        assert is2.name, "a missing InferenceService name is generated"
        assert is2.model_version_id == v1.id and is2.serving_environment_id == se.id
        assert (await svc.get_inference_service_version(is2.id)).id == v1.id

        env_list = await svc.get_environment_inference_services(se.id)
        assert sorted(i.id for i in env_list.items) == sorted([isvc.id, is2.id]) and env_list.size == 2
        assert (await svc.find_inference_service(name=isvc.name, parent_resource_id=se.id)).id == isvc.id
        assert {isvc.id, is2.id} <= {i.id for i in (await svc.get_inference_services()).items}

        upd = await svc.update_inference_service(isvc.id, InferenceServiceUpdate(
            desiredState=InferenceServiceState.UNDEPLOYED, description="down"))
        assert upd.desired_state == InferenceServiceState.UNDEPLOYED and upd.description == "down"
        assert upd.registered_model_id == rm.id and upd.runtime == "kserve"
        got = await svc.get_inference_service(isvc.id)
        assert got.desired_state == InferenceServiceState.UNDEPLOYED

        r = await svc.create_inference_service_serve_with_http_info(isvc.id, ServeModelCreate(modelVersionId=v2.id))
        assert r.status_code == 201
        serve = r.data
        assert is_id(serve.id) and serve.model_version_id == v2.id
        assert serve.last_known_state == ExecutionState.UNKNOWN
        serves = await svc.get_inference_service_serves(isvc.id)
        assert serves.size == 1 and [s.id for s in serves.items] == [serve.id]
        assert (await svc.get_inference_service_serves(is2.id)).size == 0

        with pytest.raises(mr_exc.NotFoundException):
            await svc.get_inference_service("999999999")
        with pytest.raises(mr_exc.NotFoundException):
            await svc.get_serving_environment("999999999")


# --------------------------------------------------------------------------- raw HTTP


def _raw_rm_mv(srv) -> tuple[str, str]:
    rm = expect(http(srv, "POST", "/registered_models", {"name": uniq("raw")}), 201)
    mv = expect(http(srv, "POST", "/model_versions", {"name": "v1", "registeredModelId": rm["id"]}), 201)
    return rm["id"], mv["id"]


def test_raw_nested_artifact_upsert_status(mr_server):
    _, mv = _raw_rm_mv(mr_server)
    body = {"artifactType": "model-artifact", "name": "m", "uri": "s3://b/k",
            "modelFormatName": "onnx", "modelFormatVersion": "1"}
    created = expect(http(mr_server, "POST", f"/model_versions/{mv}/artifacts", body), 201)
    assert created["artifactType"] == "model-artifact" and is_id(created["id"]) and created["uri"] == "s3://b/k"
    assert created["name"] == "m" and created["customProperties"] == {}
    updated = expect(http(mr_server, "POST", f"/model_versions/{mv}/artifacts",
                          {**body, "id": created["id"], "uri": "s3://b/k2"}), 200)
    assert updated["id"] == created["id"] and updated["uri"] == "s3://b/k2"
    assert_error(http(mr_server, "POST", f"/model_versions/{mv}/artifacts", body), 409, "Conflict")
    doc = expect(http(mr_server, "POST", f"/model_versions/{mv}/artifacts",
                      {"artifactType": "doc-artifact", "name": "m", "uri": "https://x/doc"}), 201)
    assert doc["artifactType"] == "doc-artifact"  # same name, other type: allowed
    listed = expect(http(mr_server, "GET", f"/model_versions/{mv}/artifacts"), 200)
    assert listed["size"] == 2, listed
    assert_error(http(mr_server, "GET", f"/model_artifacts/{doc['id']}"), 404, "Not Found")
    assert_error(http(mr_server, "POST", f"/model_versions/{mv}/artifacts", {"name": "x"}), 400, "Bad Request")
    assert_error(http(mr_server, "POST", "/model_versions/999999999/artifacts", body), 404, "Not Found")


def test_raw_error_bodies(mr_server):
    name = uniq("raw-err")
    rm = expect(http(mr_server, "POST", "/registered_models", {"name": name}), 201)
    assert is_id(rm["id"]) and rm["state"] == "LIVE" and rm["customProperties"] == {}
    assert is_ms(rm["createTimeSinceEpoch"]) and rm["createTimeSinceEpoch"] == rm["lastUpdateTimeSinceEpoch"]

    assert_error(http(mr_server, "POST", "/registered_models", {"name": name}), 409, "Conflict")
    assert_error(http(mr_server, "GET", "/registered_models/999999999"), 404, "Not Found")
    assert_error(http(mr_server, "GET", "/model_versions/999999999"), 404, "Not Found")
    assert_error(http(mr_server, "GET", "/model_artifacts/999999999"), 404, "Not Found")
    assert_error(http(mr_server, "GET", "/registered_model", query={"name": uniq("absent")}), 404, "Not Found")
    assert_error(http(mr_server, "GET", "/registered_models/abc"), 400, "Bad Request")
    assert_error(http(mr_server, "POST", "/registered_models", {"name": uniq("x"), "bogus": 1}), 400, "Bad Request")
    assert_error(http(mr_server, "PATCH", f"/registered_models/{rm['id']}", {"name": "zz"}), 400, "Bad Request")
    assert_error(http(mr_server, "PATCH", "/registered_models/999999999", {"description": "x"}), 404, "Not Found")
    assert_error(http(mr_server, "GET", "/registered_models", query={"pageSize": "x"}), 400, "Bad Request")
    assert_error(http(mr_server, "GET", "/registered_models", query={"nextPageToken": "!!!"}), 400, "Bad Request")
    assert_error(http(mr_server, "POST", "/model_versions", {"name": "v1", "registeredModelId": rm["id"],
                                                             "customProperties": {"k": {"metadataType": "MetadataIntValue", "int_value": "99999999999"}}}),
                 400, "Bad Request")


def test_raw_list_envelope_and_page_token(fresh_mr_server):
    ids = [expect(http(fresh_mr_server, "POST", "/registered_models", {"name": n}), 201)["id"] for n in ("a", "b", "c")]
    p1 = expect(http(fresh_mr_server, "GET", "/registered_models",
                     query={"pageSize": "2", "orderBy": "ID", "sortOrder": "ASC"}), 200)
    assert [i["id"] for i in p1["items"]] == ids[:2] and p1["size"] == 2 and p1["pageSize"] == 2, p1
    assert p1["nextPageToken"] == base64.b64encode(f"{ids[1]}:{ids[1]}".encode()).decode(), p1["nextPageToken"]
    p2 = expect(http(fresh_mr_server, "GET", "/registered_models",
                     query={"pageSize": "2", "orderBy": "ID", "sortOrder": "ASC", "nextPageToken": p1["nextPageToken"]}), 200)
    assert [i["id"] for i in p2["items"]] == ids[2:] and p2["size"] == 1 and p2["nextPageToken"] == "", p2
    # an empty token is the first page again (the Python pager relies on it)
    p1b = expect(http(fresh_mr_server, "GET", "/registered_models",
                      query={"pageSize": "2", "orderBy": "ID", "sortOrder": "ASC", "nextPageToken": ""}), 200)
    assert p1b == p1
    desc = expect(http(fresh_mr_server, "GET", "/registered_models",
                       query={"pageSize": "1", "orderBy": "CREATE_TIME", "sortOrder": "DESC"}), 200)
    last = desc["items"][0]
    assert last["id"] == ids[2]
    assert base64.b64decode(desc["nextPageToken"]).decode() == f"{last['id']}:{last['createTimeSinceEpoch']}"


# --------------------------------------------------------------------------- the client's API version


@pytest.mark.asyncio
async def test_client_calls_its_api_prefix(mr_server):
    """model-registry 0.3.14 calls /api/model_registry/v1alpha3, 0.3.18 /api/model_registry/v1: every
    operation of the generated API the client ships is under that prefix, the URLs its configuration
    builds carry it, and the server answers exactly those URLs."""
    assert API == {"0.3.14": API_V1ALPHA3, "0.3.18": API_V1}.get(CLIENT_VERSION, API), (CLIENT_VERSION, API)
    other = API_V1ALPHA3 if IS_V1 else API_V1
    api = async_api(mr_server)
    rm = await api.upsert_registered_model(RegisteredModel(name=uniq("prefix")))
    mv = await api.upsert_model_version(ModelVersion(name="v1"), rm.id)
    async with api.get_client() as svc:
        # every operation's path (the generated code spells each one out)
        paths = re.findall(r'resource_path="([^"]+)"', inspect.getsource(type(svc)))
        assert len(paths) >= 40, f"found only {len(paths)} operations in the generated API"
        assert [p for p in paths if not p.startswith(API + "/")] == [], f"operations outside {API}"
        # experiment operations exist exactly when the API has experiments (what the suite deselects by)
        exp_paths = {p for p in paths if p.startswith(API + "/experiment")}
        assert bool(exp_paths) == HAS_EXPERIMENTS, sorted(exp_paths)
        assert hasattr(svc, "get_experiments") == HAS_EXPERIMENTS

        # the URLs the client's configuration builds (positional: the parameter names differ
        # between the two generated clients), sent as they are
        assert svc.api_client.configuration.host == mr_server.base_url
        built = [
            svc._get_registered_models_serialize(None, "1", None, None, None, None, None, None, 0),
            svc._get_registered_model_serialize(rm.id, None, None, None, 0),
            svc._get_registered_model_versions_serialize(rm.id, None, None, None, None, None, None, None,
                                                         None, None, None, 0),
            svc._get_model_version_serialize(mv.id, None, None, None, 0),
        ]
    want_urls = [f"{mr_server.base_url}{API}/registered_models?pageSize=1",
                 f"{mr_server.base_url}{API}/registered_models/{rm.id}",
                 f"{mr_server.base_url}{API}/registered_models/{rm.id}/versions",
                 f"{mr_server.base_url}{API}/model_versions/{mv.id}"]
    assert [(b[0], b[1]) for b in built] == [("GET", u) for u in want_urls]
    for method, url, headers, *_ in built:
        assert not url.startswith(mr_server.base_url + other + "/")
        with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers), timeout=30) as r:
            assert r.status == 200, url
            body = json.loads(r.read())
        if url.endswith("pageSize=1"):
            assert body["pageSize"] == 1 and len(body["items"]) == 1, body
        elif url.endswith("/versions"):
            assert [v["id"] for v in body["items"]] == [mv.id], body
        else:
            assert body["id"] in (rm.id, mv.id), body


# --------------------------------------------------------------------------- artifacts of every kind (generated API)
#
# The five artifact kinds through the generated mr_openapi API that both clients ship: POST /artifacts,
# GET/PATCH /artifacts/{id}, GET /artifact (find by external id, by name under a version), GET
# /artifacts?artifactType=, the nested upsert POST /model_versions/{id}/artifacts and its listing, with
# custom properties of every value kind. Metric.step is the one field whose type differs between the
# two APIs: STEP() builds it as the client's models want it.


def STEP(n: int) -> int | str:
    """A metric step as the client's generated models carry it: int64 decimal text on v1, an integer on v1alpha3."""
    return str(n) if IS_V1 else n


STRUCT = {"a": 1, "b": ["x", True], "c": {"d": None}, "e": 0.5}


def every_kind_props() -> dict:
    """Custom properties of every value kind the API stores, as generated MetadataValues."""
    return {
        "s": oa.MetadataValue(oa.MetadataStringValue(string_value="t\u00e9xt \u2713", metadataType="MetadataStringValue")),
        "empty": oa.MetadataValue(oa.MetadataStringValue(string_value="", metadataType="MetadataStringValue")),
        "i": oa.MetadataValue(oa.MetadataIntValue(int_value="-999999999", metadataType="MetadataIntValue")),
        "d": oa.MetadataValue(oa.MetadataDoubleValue(double_value=0.1, metadataType="MetadataDoubleValue")),
        "b": oa.MetadataValue(oa.MetadataBoolValue(bool_value=False, metadataType="MetadataBoolValue")),
        "st": oa.MetadataValue(oa.MetadataStructValue(
            struct_value=base64.b64encode(json.dumps(STRUCT).encode()).decode(), metadataType="MetadataStructValue")),
    }


def check_every_kind_props(props: dict | None, where: str) -> None:
    got = {k: v.actual_instance for k, v in (props or {}).items()}
    kinds = {k: type(v).__name__ for k, v in got.items()}
    assert kinds == {"s": "MetadataStringValue", "empty": "MetadataStringValue", "i": "MetadataIntValue",
                     "d": "MetadataDoubleValue", "b": "MetadataBoolValue", "st": "MetadataStructValue"}, f"{where}: {kinds}"
    assert (got["s"].string_value, got["empty"].string_value) == ("t\u00e9xt \u2713", ""), where
    assert got["i"].int_value == "-999999999" and got["d"].double_value == 0.1, where
    assert got["b"].bool_value is False, where
    # a struct is sent as base64 of a JSON object and read back as its JSON text (upstream's asymmetry)
    assert json.loads(got["st"].struct_value) == STRUCT, f"{where}: struct_value {got['st'].struct_value!r}"


def _kind(wrapped) -> str:
    return wrapped.actual_instance.artifact_type


@pytest.mark.asyncio
async def test_artifacts_of_every_kind_generated_api(mr_server):
    api = async_api(mr_server)
    rm = await api.upsert_registered_model(RegisteredModel(name=uniq("kinds")))
    mv = await api.upsert_model_version(ModelVersion(name="v1"), rm.id)
    tag = uuid.uuid4().hex[:10]
    creates = {
        "model-artifact": oa.ModelArtifactCreate(
            name="weights", uri="s3://b/w.onnx", modelFormatName="onnx", modelFormatVersion="1", storageKey="k",
            storagePath="p/w", serviceAccountName="sa", modelSourceKind="kfp", modelSourceClass="pipelinerun",
            modelSourceGroup="ns", modelSourceId="run-1", modelSourceName="train", state=oa.ArtifactState.LIVE),
        "doc-artifact": oa.DocArtifactCreate(name="readme", uri="https://example.invalid/README.md", description="docs"),
        "dataset-artifact": oa.DataSetCreate(
            name="train", uri="s3://d/train.csv", digest="sha256:abc", sourceType="s3", source="s3://d",
            schema='{"cols": ["a"]}', profile='{"rows": 3}'),
        "metric": oa.MetricCreate(name="accuracy", value=0.875, step=STEP(12), timestamp="1700000000123",
                                  description="val acc"),
        "parameter": oa.ParameterCreate(name="lr", value="0.01", parameterType=ParameterType.NUMBER),
    }
    made = {}
    async with api.get_client() as svc:
        # POST /artifacts: each kind, with an external id and custom properties of every kind
        for kind, body in creates.items():
            body.external_id = f"{kind}-{tag}"
            body.custom_properties = every_kind_props()
            r = await svc.create_artifact_with_http_info(oa.ArtifactCreate(body))
            assert r.status_code == 201, (kind, r.status_code, r.raw_data)
            art = r.data.actual_instance
            assert art.artifact_type == kind and is_id(art.id) and art.name == body.name, art
            assert art.external_id == f"{kind}-{tag}" and is_ms(art.create_time_since_epoch), art
            check_every_kind_props(art.custom_properties, f"POST /artifacts {kind}")
            made[kind] = art
        ma, doc, ds, met, par = (made[k] for k in creates)
        assert (ma.uri, ma.model_format_name, ma.model_format_version, ma.storage_key, ma.storage_path,
                ma.service_account_name, ma.model_source_kind, ma.model_source_class, ma.model_source_group,
                ma.model_source_id, ma.model_source_name, ma.state) == (
            "s3://b/w.onnx", "onnx", "1", "k", "p/w", "sa", "kfp", "pipelinerun", "ns", "run-1", "train",
            oa.ArtifactState.LIVE)
        assert (doc.uri, doc.description) == ("https://example.invalid/README.md", "docs")
        assert (ds.uri, ds.digest, ds.source_type, ds.source, ds.var_schema, ds.profile) == (
            "s3://d/train.csv", "sha256:abc", "s3", "s3://d", '{"cols": ["a"]}', '{"rows": 3}')
        assert (met.value, met.step, met.timestamp, met.description) == (0.875, STEP(12), "1700000000123", "val acc")
        assert (par.value, par.parameter_type) == ("0.01", ParameterType.NUMBER)

        # GET /artifacts/{id} and GET /artifact?externalId=
        for kind, art in made.items():
            got = (await svc.get_artifact(art.id)).actual_instance
            assert got.artifact_type == kind and got.id == art.id and got.name == art.name, got
            check_every_kind_props(got.custom_properties, f"GET /artifacts/{art.id} {kind}")
            found = (await svc.find_artifact(external_id=f"{kind}-{tag}")).actual_instance
            assert (found.id, found.artifact_type) == (art.id, kind)
        assert (await svc.get_artifact(met.id)).actual_instance.step == STEP(12)

        # GET /artifacts?artifactType=: each kind lists its own and none of the others
        for kind, art in made.items():
            listed = await svc.get_artifacts(artifact_type=ArtType(kind))
            ids = {_kind(a): set() for a in listed.items}
            for a in listed.items:
                ids[_kind(a)].add(a.actual_instance.id)
            assert set(ids) == {kind} and art.id in ids[kind], (kind, {k: len(v) for k, v in ids.items()})

        # PATCH /artifacts/{id}: the kind's own fields, custom properties replaced as a whole
        tick()
        updates = {
            "model-artifact": oa.ModelArtifactUpdate(uri="s3://b/w2.onnx", modelFormatVersion="2", state=oa.ArtifactState.LIVE),
            "doc-artifact": oa.DocArtifactUpdate(uri="https://example.invalid/v2.md", state=oa.ArtifactState.LIVE),
            "dataset-artifact": oa.DataSetUpdate(digest="sha256:def", profile='{"rows": 4}', state=oa.ArtifactState.LIVE),
            "metric": oa.MetricUpdate(value=0.9375, step=STEP(13), state=oa.ArtifactState.LIVE),
            "parameter": oa.ParameterUpdate(value="adam", parameterType=ParameterType.STRING, state=oa.ArtifactState.LIVE),
        }
        for kind, body in updates.items():
            body.custom_properties = {"only": oa.MetadataValue(oa.MetadataIntValue(int_value="7", metadataType="MetadataIntValue"))}
            upd = (await svc.update_artifact(made[kind].id, oa.ArtifactUpdate(body))).actual_instance
            assert upd.artifact_type == kind and upd.id == made[kind].id and upd.name == made[kind].name, upd
            assert upd.state == oa.ArtifactState.LIVE and upd.external_id == f"{kind}-{tag}", upd
            assert {k: v.actual_instance.int_value for k, v in (upd.custom_properties or {}).items()} == {"only": "7"}, upd
            assert int(upd.last_update_time_since_epoch) > int(made[kind].last_update_time_since_epoch), upd
            assert upd.create_time_since_epoch == made[kind].create_time_since_epoch
        got = {k: (await svc.get_artifact(a.id)).actual_instance for k, a in made.items()}
        assert (got["model-artifact"].uri, got["model-artifact"].model_format_version,
                got["model-artifact"].model_format_name, got["model-artifact"].storage_path) == (
            "s3://b/w2.onnx", "2", "onnx", "p/w")
        assert got["doc-artifact"].uri == "https://example.invalid/v2.md" and got["doc-artifact"].description == "docs"
        assert (got["dataset-artifact"].digest, got["dataset-artifact"].profile, got["dataset-artifact"].uri) == (
            "sha256:def", '{"rows": 4}', "s3://d/train.csv")
        assert (got["metric"].value, got["metric"].step, got["metric"].timestamp) == (0.9375, STEP(13), "1700000000123")
        assert (got["parameter"].value, got["parameter"].parameter_type) == ("adam", ParameterType.STRING)
        # the kind of an artifact is immutable
        with pytest.raises(mr_exc.BadRequestException):
            await svc.update_artifact(met.id, oa.ArtifactUpdate(oa.ParameterUpdate(value="x")))

        # the nested upsert on a model version: metric, parameter and dataset (200), model and doc (201)
        nested = {
            "metric": oa.Metric(name="loss", value=0.25, step=STEP(3), customProperties=every_kind_props()),
            "parameter": oa.Parameter(name="epochs", value="10", parameterType=ParameterType.NUMBER),
            "dataset-artifact": oa.DataSet(name="eval", uri="s3://d/eval.csv", sourceType="s3"),
            "model-artifact": oa.ModelArtifact(name="model", uri="s3://b/m", modelFormatName="pt"),
            "doc-artifact": oa.DocArtifact(name="card", uri="https://example.invalid/card.md"),
        }
        under = {}
        for kind, body in nested.items():
            r = await svc.upsert_model_version_artifact_with_http_info(mv.id, oa.Artifact(body))
            assert r.status_code == (201 if kind in ("model-artifact", "doc-artifact") else 200), (kind, r.status_code)
            art = r.data.actual_instance
            assert art.artifact_type == kind and is_id(art.id) and art.name == body.name, art
            under[kind] = art
        check_every_kind_props(under["metric"].custom_properties, "nested metric")
        assert (under["metric"].value, under["metric"].step) == (0.25, STEP(3))
        assert (under["parameter"].value, under["parameter"].parameter_type) == ("10", ParameterType.NUMBER)
        # a second metric of the same name under the same version is a conflict
        with pytest.raises(mr_exc.ConflictException):
            await svc.upsert_model_version_artifact(mv.id, oa.Artifact(oa.Metric(name="loss", value=1.0, step=STEP(4))))
        # the nested upsert with an id updates in place
        r = await svc.upsert_model_version_artifact_with_http_info(mv.id, oa.Artifact(oa.Metric(
            id=under["metric"].id, name="loss", value=0.125, step=STEP(4))))
        assert r.status_code == 200 and r.data.actual_instance.id == under["metric"].id
        assert (r.data.actual_instance.value, r.data.actual_instance.step) == (0.125, STEP(4))

        all_under = await svc.get_model_version_artifacts(mv.id)
        assert sorted((_kind(a), a.actual_instance.id) for a in all_under.items) == sorted(
            (k, a.id) for k, a in under.items()) and all_under.size == 5
        for kind, art in under.items():
            lst = await svc.get_model_version_artifacts(mv.id, artifact_type=ArtType(kind))
            assert [(_kind(a), a.actual_instance.id) for a in lst.items] == [(kind, art.id)], kind
            found = (await svc.find_artifact(name=art.name, parent_resource_id=mv.id)).actual_instance
            assert (found.id, found.artifact_type) == (art.id, kind)
        # the top-level artifacts belong to no version
        assert not {a.id for a in made.values()} & {a.actual_instance.id for a in all_under.items}

    # the high-level client reads every kind back as its own type
    arts = {type(a).__name__: a for a in await api.get_model_version_artifacts(mv.id)}
    assert set(arts) == {"ModelArtifact", "DocArtifact", "DataSet", "Metric", "Parameter"}, arts
    assert isinstance(arts["Metric"], Metric) and arts["Metric"].value == 0.125 and arts["Metric"].step == 4
    assert isinstance(arts["Parameter"], Parameter) and arts["Parameter"].value == 10.0  # "number" parameters
    assert isinstance(arts["DataSet"], DataSet) and arts["DataSet"].uri == "s3://d/eval.csv"
    props = dict(arts["Metric"].custom_properties)
    assert json.loads(props.pop("st")) == STRUCT  # the client keeps the struct's JSON text as a str
    assert_props(props, {"s": "t\u00e9xt \u2713", "empty": "", "i": -999999999, "d": 0.1, "b": False})
    by_type = await api.get_artifacts(artifact_type=ArtifactTypeQueryParam.METRIC)
    assert {under["metric"].id, met.id} <= {a.id for a in by_type} and all(isinstance(a, Metric) for a in by_type)


@pytest.mark.asyncio
async def test_metric_step_type_of_the_api(mr_server):
    """Metric.step is int64 decimal text on v1 and an integer on v1alpha3: written and read through the
    generated API, and as raw JSON on the client's prefix."""
    api = async_api(mr_server)
    rm = await api.upsert_registered_model(RegisteredModel(name=uniq("step")))
    mv = await api.upsert_model_version(ModelVersion(name="v1"), rm.id)
    steps = [0, 7, 2147483647]
    async with api.get_client() as svc:
        ids = {}
        for n in steps:
            m = (await svc.upsert_model_version_artifact(mv.id, oa.Artifact(oa.Metric(
                name=f"m{n}", value=1.5, step=STEP(n))))).actual_instance
            assert m.step == STEP(n) and type(m.step) is (str if IS_V1 else int), repr(m.step)
            ids[n] = m.id
        top = (await svc.create_artifact(oa.ArtifactCreate(oa.MetricCreate(name=uniq("m"), value=2.0, step=STEP(42))))).actual_instance
        assert top.step == STEP(42)
        for n, i in ids.items():
            assert (await svc.get_artifact(i)).actual_instance.step == STEP(n)
        lst = await svc.get_model_version_artifacts(mv.id, artifact_type=ArtType.METRIC)
        assert sorted((a.actual_instance.id, a.actual_instance.step) for a in lst.items) == sorted(
            (ids[n], STEP(n)) for n in steps)
    wire = str if IS_V1 else int
    for n, i in ids.items():
        raw = expect(http(mr_server, "GET", f"/artifacts/{i}"), 200)
        assert raw["step"] == wire(n) and type(raw["step"]) is wire, f"{API}: step {raw['step']!r}, want {wire(n)!r}"
    raw = expect(http(mr_server, "GET", f"/model_versions/{mv.id}/artifacts", query={"artifactType": "metric"}), 200)
    assert sorted(a["step"] for a in raw["items"]) == sorted(wire(n) for n in steps), raw


@pytest.mark.asyncio
async def test_metric_and_double_values_round_trip_exactly_on_versions(mr_server):
    """A float sent as JSON (shortest repr) comes back as the same double: 1/11, 1/53, 1/65, 0.1+0.2, ...
    (metrics on a model version through the generated API, and a double custom property)."""
    api = async_api(mr_server)
    rm = await api.upsert_registered_model(RegisteredModel(name=uniq("float"), custom_properties={"x": 1 / 11}))
    mv = await api.upsert_model_version(ModelVersion(name="v1"), rm.id)
    values = [1 / 11, 1 / 53, 1 / 65, 0.1 + 0.2, 1e-300, 123456.789e10, -2.5e-7]
    bad = []
    async with api.get_client() as svc:
        for i, v in enumerate(values):
            m = (await svc.upsert_model_version_artifact(mv.id, oa.Artifact(oa.Metric(
                name=f"m{i}", value=v, step=STEP(0))))).actual_instance
            if m.value != v:
                bad.append(f"metric value: sent {v!r}, got {m.value!r}")
    back = {a.name: a.value for a in await api.get_model_version_artifacts(mv.id)}
    bad += [f"metric value (GET): sent {v!r}, got {back.get(f'm{i}')!r}" for i, v in enumerate(values)
            if back.get(f"m{i}") != v]
    if rm.custom_properties["x"] != 1 / 11:
        bad.append(f"double custom property: sent {1 / 11!r}, got {rm.custom_properties['x']!r}")
    got = await api.get_registered_model_by_id(rm.id)
    if got.custom_properties["x"] != 1 / 11:
        bad.append(f"double custom property (GET): sent {1 / 11!r}, got {got.custom_properties['x']!r}")
    assert not bad, "doubles do not round-trip:\n" + "\n".join(bad)


# --------------------------------------------------------------------------- v1 and v1alpha3 side by side
#
# With a v1 client only (marked `v1`): both prefixes serve one database. What v1alpha3 wrote, v1 reads
# (without the experiment fields, step as text) and the other way round; v1 has no experiment endpoints.


@pytest.mark.v1
@pytest.mark.asyncio
async def test_v1_and_v1alpha3_share_one_database(mr_server):
    def alpha(method, path, body=None, query=None):
        return http(mr_server, method, path, body, query, prefix=API_V1ALPHA3)

    # experiment tracking through v1alpha3
    exp = expect(alpha("POST", "/experiments", {"name": uniq("shared-exp")}), 201)
    run = expect(alpha("POST", "/experiment_runs", {"experimentId": exp["id"], "name": "run"}), 201)
    logged = expect(alpha("POST", f"/experiment_runs/{run['id']}/artifacts",
                          {"artifactType": "metric", "name": "acc", "value": 0.5, "step": 5}), 200)
    assert logged["step"] == 5 and logged["experimentRunId"] == run["id"], logged
    ds = expect(alpha("POST", f"/experiment_runs/{run['id']}/artifacts",
                      {"artifactType": "dataset-artifact", "name": "train", "uri": "s3://d/t"}), 200)

    # ... is an artifact under v1, without the experiment fields, its step as text
    for art in (logged, ds):
        raw = expect(http(mr_server, "GET", f"/artifacts/{art['id']}"), 200)
        assert not {"experimentId", "experimentRunId"} & set(raw), f"v1 shows experiment fields: {raw}"
        assert not {"experiment_id", "experiment_run_id"} & set(raw.get("customProperties", {})), raw
        assert raw["name"] == art["name"] and raw["artifactType"] == art["artifactType"], raw
    assert expect(http(mr_server, "GET", f"/artifacts/{logged['id']}"), 200)["step"] == "5"
    api = async_api(mr_server)
    async with api.get_client() as svc:
        got = (await svc.get_artifact(logged["id"])).actual_instance
        assert (got.artifact_type, got.name, got.value, got.step) == ("metric", "acc", 0.5, "5")
        listed = await svc.get_artifacts(artifact_type=ArtType.METRIC)
        assert logged["id"] in {a.actual_instance.id for a in listed.items}
        # the metric-history rows v1alpha3 left are not artifacts under v1
        assert not [a.actual_instance.name for a in listed.items if re.match(r"^acc__[0-9]+$", a.actual_instance.name or "")]

    # v1 has no experiment tracking
    for path in ("/experiments", f"/experiments/{exp['id']}", "/experiment", f"/experiment_runs/{run['id']}",
                 "/experiment_runs", f"/experiment_runs/{run['id']}/artifacts", f"/experiment_runs/{run['id']}/metric_history",
                 "/experiment_runs/metric_history"):
        r = http(mr_server, "GET", path, query={"name": "x"} if path == "/experiment" else None)
        assert r.status == 404, f"v1 must not serve {path}: {r}"
    assert http(mr_server, "POST", "/experiments", {"name": uniq("x")}).status == 404
    assert http(mr_server, "POST", f"/experiment_runs/{run['id']}/artifacts",
                {"artifactType": "metric", "name": "m", "value": 1.0, "step": "1"}).status == 404

    # written through v1, read through v1alpha3: same rows, step as an integer
    rm = await api.upsert_registered_model(RegisteredModel(name=uniq("shared-rm"), custom_properties={"k": 1}))
    mv = await api.upsert_model_version(ModelVersion(name="v1"), rm.id)
    async with api.get_client() as svc:
        m = (await svc.upsert_model_version_artifact(mv.id, oa.Artifact(oa.Metric(name="f1", value=0.75, step="9")))).actual_instance
    a_rm = expect(alpha("GET", f"/registered_models/{rm.id}"), 200)
    assert a_rm["name"] == rm.name and a_rm["customProperties"]["k"]["int_value"] == "1", a_rm
    assert [v["id"] for v in expect(alpha("GET", f"/registered_models/{rm.id}/versions"), 200)["items"]] == [mv.id]
    a_m = expect(alpha("GET", f"/artifacts/{m.id}"), 200)
    assert a_m["step"] == 9 and a_m["value"] == 0.75 and a_m["name"] == "f1", a_m
    # an update through one prefix is seen through the other
    expect(alpha("PATCH", f"/registered_models/{rm.id}", {"description": "via alpha", "state": "LIVE"}), 200)
    assert (await api.get_registered_model_by_id(rm.id)).description == "via alpha"


# --------------------------------------------------------------------------- experiments and runs
#
# The client's experiment-tracking API: ModelRegistry.create_experiment / get_experiments /
# start_experiment_run (ActiveExperimentRun.log_param / log_metric / log_dataset, upserted on exit) /
# get_experiment_run / get_experiment_runs / get_experiment_run_logs, and underneath them
# ModelRegistryAPIClient.upsert_experiment / upsert_experiment_run / upsert_experiment_run_artifact /
# get_artifacts_by_experiment_run_params. The client wraps neither the metric_history endpoints nor
# PATCH /experiment_runs/{id} (its upsert_experiment_run with an id is broken: it calls
# create_experiment_run(id, update)), so those go through the generated API of get_client().

# Only v1alpha3 clients have them (0.3.18 has neither the types nor the API calls); every test of
# this section is marked `experiments` and deselected with a v1 client (conftest.py).
if HAS_EXPERIMENTS:
    from model_registry.types import Experiment, ExperimentRun  # noqa: E402
    from mr_openapi import ExperimentRunState, ExperimentRunStatus, ExperimentRunUpdate, ExperimentState  # noqa: E402

experiments = pytest.mark.experiments


def _art_kinds(arts) -> list[tuple[str, str]]:
    return sorted((type(a).__name__, a.name) for a in arts)


@experiments
def test_experiment_create_and_upsert_by_name(client, mr_server):
    name = uniq("exp")
    exp = client.create_experiment(name)
    assert isinstance(exp, Experiment) and is_id(exp.id) and exp.name == name
    assert exp.state == ExperimentState.LIVE
    assert is_ms(exp.create_time_since_epoch) and is_ms(exp.last_update_time_since_epoch)
    # the same name again is an upsert (find by name, then PATCH): same id
    again = client.create_experiment(name)
    assert again.id == exp.id and again.name == name

    api = async_api(mr_server)
    tick()
    upd = client.async_runner(api.upsert_experiment(
        Experiment(name=name, owner="alice", description="desc", custom_properties={"team": "ml", "k": 3})))
    assert upd.id == exp.id and upd.owner == "alice" and upd.description == "desc"
    assert_props(upd.custom_properties, {"team": "ml", "k": 3})
    assert int(upd.last_update_time_since_epoch) > int(exp.last_update_time_since_epoch)
    assert upd.create_time_since_epoch == exp.create_time_since_epoch

    by_name = client.async_runner(api.get_experiment_by_name(name))
    assert by_name.id == exp.id and by_name.owner == "alice"
    by_id = client.async_runner(api.get_experiment_by_id(exp.id))
    assert by_id is not None and by_id.id == exp.id and by_id.name == name
    assert client.async_runner(api.get_experiment_by_name(uniq("nope"))) is None
    assert client.async_runner(api.get_experiment_by_id("999999999")) is None

    other = client.create_experiment(uniq("exp"))
    assert other.id != exp.id
    ids = [e.id for e in drain(client.get_experiments(), 1000)]
    assert {exp.id, other.id} <= set(ids) and len(ids) == len(set(ids))


@experiments
def test_start_experiment_run_logs_params_metrics_datasets(client, mr_server):
    exp_name = uniq("exp-run")
    with client.start_experiment_run(experiment_name=exp_name, owner="bob", description="exp desc",
                                     run_description="first run") as run:
        assert is_id(run.info.id) and is_id(run.info.experiment_id) and run.info.name
        run.log_param("lr", 0.01)
        run.log_param("epochs", 10)
        run.log_param("optimizer", "adam", description="the optimizer")
        run.log_param("shuffle", True)
        run.log_metric("accuracy", 0.93, step=4, description="val acc")
        run.log_metric("loss", 0.25, step=4, timestamp="1700000000123")
        run.log_dataset("train", uri="s3://data/train.csv", source_type="s3", source="s3://data",
                        schema='{"cols": ["a", "b"]}', profile='{"rows": 100}', description="training set")
        # nothing reaches the server before the context exits
        assert drain(client.get_experiment_run_logs(run_id=run.info.id), 10) == []

    exp = client.async_runner(async_api(mr_server).get_experiment_by_name(exp_name))
    assert exp is not None and exp.id == run.info.experiment_id and exp.owner == "bob" and exp.description == "exp desc"

    # on exit the logs were upserted and replaced by what the server answered
    lr = run.get_log("params", "lr")
    assert isinstance(lr, Parameter) and is_id(lr.id) and lr.value == 0.01 and lr.parameter_type == ParameterType.NUMBER
    assert lr.experiment_id == exp.id and lr.experiment_run_id == run.info.id
    assert run.get_log("params", "epochs").value == 10.0
    opt = run.get_log("params", "optimizer")
    assert opt.value == "adam" and opt.parameter_type == ParameterType.STRING and opt.description == "the optimizer"
    shuffle = run.get_log("params", "shuffle")
    assert shuffle.value is True and shuffle.parameter_type == ParameterType.BOOLEAN
    acc = run.get_log("metrics", "accuracy")
    assert isinstance(acc, Metric) and is_id(acc.id) and acc.value == 0.93 and acc.step == 4
    assert acc.description == "val acc" and is_ms(acc.timestamp)
    loss = run.get_log("metrics", "loss")
    assert loss.value == 0.25 and loss.step == 4 and loss.timestamp == "1700000000123"
    ds = run.get_log("datasets", "train")
    assert isinstance(ds, DataSet) and is_id(ds.id) and ds.uri == "s3://data/train.csv"
    assert (ds.source_type, ds.source, ds.schema, ds.profile, ds.description) == (
        "s3", "s3://data", '{"cols": ["a", "b"]}', '{"rows": 100}', "training set")
    assert ds.experiment_id == exp.id and ds.experiment_run_id == run.info.id
    for a in (lr, acc, ds):  # the run/experiment links are fields, not custom properties
        assert not any(k.startswith("experiment") for k in (a.custom_properties or {})), a.custom_properties

    got = client.get_experiment_run(run.info.id)
    assert isinstance(got, ExperimentRun) and got.id == run.info.id and got.name == run.info.name
    assert got.experiment_id == exp.id and got.description == "first run" and got.state == ExperimentRunState.LIVE

    want = sorted([("Parameter", "lr"), ("Parameter", "epochs"), ("Parameter", "optimizer"), ("Parameter", "shuffle"),
                   ("Metric", "accuracy"), ("Metric", "loss"), ("DataSet", "train")])
    logs = drain(client.get_experiment_run_logs(run_id=run.info.id), 7)
    assert _art_kinds(logs) == want
    assert {a.id for a in logs} == {run.get_log(t, k).id for t, k in
                                    [("params", "lr"), ("params", "epochs"), ("params", "optimizer"),
                                     ("params", "shuffle"), ("metrics", "accuracy"), ("metrics", "loss"),
                                     ("datasets", "train")]}
    assert _art_kinds(drain(client.get_experiment_run_logs(run_name=run.info.name, experiment_name=exp_name), 7)) == want
    assert _art_kinds(drain(client.get_experiment_run_logs(run_name=run.info.name, experiment_id=exp.id), 7)) == want
    # a paged listing (page size 2) yields every log exactly once
    pager = client.get_experiment_run_logs(run_id=run.info.id).page_size(2)
    paged = [a.id for a in drain(pager, 7)]
    assert sorted(paged) == sorted(a.id for a in logs) and len(paged) == 7

    # the context is released on exit: a second run on the same experiment reuses it
    with client.start_experiment_run(experiment_name=exp_name) as run2:
        run2.log_metric("accuracy", 0.5)
    assert run2.info.experiment_id == exp.id and run2.info.id != run.info.id and run2.info.name != run.info.name
    assert _art_kinds(drain(client.get_experiment_run_logs(run_id=run2.info.id), 1)) == [("Metric", "accuracy")]
    # the first run's metric of the same name is untouched
    first_acc = [a for a in drain(client.get_experiment_run_logs(run_id=run.info.id), 7) if a.name == "accuracy"]
    assert [(a.id, a.value) for a in first_acc] == [(acc.id, 0.93)]

    runs = drain(client.get_experiment_runs(experiment_name=exp_name), 2)
    assert sorted(r.id for r in runs) == sorted([run.info.id, run2.info.id])
    assert all(r.experiment_id == exp.id for r in runs)
    assert sorted(r.id for r in drain(client.get_experiment_runs(experiment_id=exp.id), 2)) == sorted(r.id for r in runs)


@experiments
def test_start_experiment_run_generated_experiment_and_nested(client):
    with client.start_experiment_run() as outer:
        assert is_id(outer.info.experiment_id)
        with pytest.raises(ValueError):  # a second top-level run while one is active
            client.start_experiment_run()
        # (the client's nested __exit__ clears the whole active context, so this stays last)
        with client.start_experiment_run(nested=True) as inner:
            inner.log_param("depth", 2)
    assert inner.info.experiment_id == outer.info.experiment_id and inner.info.id != outer.info.id
    got = client.get_experiment_run(inner.info.id)
    assert_props(got.custom_properties, {"kubeflow.parent_run_id": outer.info.id})
    runs = sorted(r.id for r in drain(client.get_experiment_runs(experiment_id=outer.info.experiment_id), 2))
    assert runs == sorted([outer.info.id, inner.info.id])


@experiments
@pytest.mark.asyncio
async def test_experiment_runs_explicit_names_and_listing(mr_server):
    api = async_api(mr_server)
    exp = await api.upsert_experiment(Experiment(name=uniq("exp-list")))
    other = await api.upsert_experiment(Experiment(name=uniq("exp-other")))
    names = [f"run-{i}" for i in range(5)]
    runs = []
    for n in names:
        r = await api.upsert_experiment_run(ExperimentRun(name=n, experiment_id=exp.id, owner="carol",
                                                          custom_properties={"seed": len(runs)}))
        assert is_id(r.id) and r.name == n and r.experiment_id == exp.id and r.owner == "carol"
        assert r.state == ExperimentRunState.LIVE
        assert_props(r.custom_properties, {"seed": len(runs)})
        runs.append(r)
    # the same run name in another experiment is fine
    o = await api.upsert_experiment_run(ExperimentRun(name="run-0", experiment_id=other.id))
    assert o.experiment_id == other.id and o.id not in {r.id for r in runs}

    listed = await api.get_experiment_runs_by_experiment_id(exp.id)
    assert [r.id for r in listed] == [r.id for r in runs]
    assert [r.name for r in listed] == names
    assert [r.id for r in await api.get_experiment_runs_by_experiment_name(exp.name)] == [r.id for r in runs]
    assert [r.id for r in await api.get_experiment_runs_by_experiment_id(other.id)] == [o.id]
    assert await api.get_experiment_runs_by_experiment_id("999999999") == []
    assert await api.get_experiment_runs_by_experiment_name(uniq("nope")) == []

    opts = ListOptions(limit=2, order_by="ID", is_asc=False)
    page1 = await api.get_experiment_runs_by_experiment_id(exp.id, opts)
    page2 = await api.get_experiment_runs_by_experiment_id(exp.id, opts)
    page3 = await api.get_experiment_runs_by_experiment_id(exp.id, opts)
    assert [r.id for r in page1 + page2 + page3] == [r.id for r in reversed(runs)]

    async with api.get_client() as c:
        found = await c.find_experiment_run(name="run-3", parent_resource_id=exp.id)
        assert found.id == runs[3].id
        # filterQuery on the nested list and on the global list
        fl = await c.get_experiment_experiment_runs(exp.id, filter_query="name = 'run-2' OR name = 'run-4'")
        assert sorted(r.id for r in fl.items) == sorted([runs[2].id, runs[4].id])
        fl = await c.get_experiment_experiment_runs(exp.id, filter_query="seed >= 3")
        assert sorted(r.id for r in fl.items) == sorted([runs[3].id, runs[4].id])
        fl = await c.get_experiment_runs(filter_query=f"experimentId = {exp.id}")
        assert sorted(r.id for r in fl.items) == sorted(r.id for r in runs), "filterQuery experimentId on /experiment_runs"
        all_runs = await c.get_experiment_runs()
        assert {r.id for r in runs} | {o.id} <= {r.id for r in all_runs.items}
        exps = await c.get_experiments(filter_query=f"name = '{exp.name}'")
        assert [e.id for e in exps.items] == [exp.id]


@experiments
@pytest.mark.asyncio
async def test_experiment_run_status_and_end_time(mr_server):
    api = async_api(mr_server)
    exp = await api.upsert_experiment(Experiment(name=uniq("exp-status")))
    run = await api.upsert_experiment_run(ExperimentRun(name=uniq("run"), experiment_id=exp.id))
    async with api.get_client() as c:
        raw = await c.get_experiment_run(run.id)
        assert raw.status == ExperimentRunStatus.RUNNING and raw.state == ExperimentRunState.LIVE
        end = str(int(time.time() * 1000))
        tick()
        upd = await c.update_experiment_run(run.id, ExperimentRunUpdate(
            status=ExperimentRunStatus.FINISHED, end_time_since_epoch=end, description="done"))
        assert upd.id == run.id and upd.status == ExperimentRunStatus.FINISHED
        assert upd.end_time_since_epoch == end and upd.description == "done"
        assert upd.name == run.name and upd.experiment_id == exp.id
        assert int(upd.last_update_time_since_epoch) > int(raw.last_update_time_since_epoch)
        again = await c.get_experiment_run(run.id)
        assert (again.status, again.end_time_since_epoch, again.description) == (ExperimentRunStatus.FINISHED, end, "done")
        upd = await c.update_experiment_run(run.id, ExperimentRunUpdate(status=ExperimentRunStatus.FAILED,
                                                                         state=ExperimentRunState.ARCHIVED))
        assert upd.status == ExperimentRunStatus.FAILED and upd.state == ExperimentRunState.ARCHIVED
        fl = await c.get_experiment_experiment_runs(exp.id, filter_query="state = 'ARCHIVED'")
        assert [r.id for r in fl.items] == [run.id]


def VAL(step: int) -> float:
    """Metric values exactly representable in binary (the float round trip is checked on its own below)."""
    return 2.0 - step * 0.0625


@experiments
@pytest.mark.asyncio
async def test_metric_relog_over_steps_and_history(mr_server):
    api = async_api(mr_server)
    exp = await api.upsert_experiment(Experiment(name=uniq("exp-hist")))
    run = await api.upsert_experiment_run(ExperimentRun(name=uniq("run"), experiment_id=exp.id))
    other = await api.upsert_experiment_run(ExperimentRun(name=uniq("run"), experiment_id=exp.id))
    metric = uniq("loss")  # unique, so the global metric_history can be filtered by name
    steps = 20
    ids = set()
    for step in range(steps):
        m = await api.upsert_experiment_run_artifact(run.id, Metric(
            name=metric, value=VAL(step), step=step, timestamp=str(1_700_000_000_000 + step)))
        assert isinstance(m, Metric) and m.name == metric and m.step == step and m.value == VAL(step)
        assert m.experiment_run_id == run.id and m.experiment_id == exp.id
        ids.add(m.id)
    assert len(ids) == 1, f"re-logging a metric by name must update it in place, got ids {ids}"
    (metric_id,) = ids
    # the other run logs the same metric name: its own artifact
    om = await api.upsert_experiment_run_artifact(other.id, Metric(name=metric, value=42.0, step=0))
    assert om.id != metric_id

    # a parameter is upserted by name too
    p1 = await api.upsert_experiment_run_artifact(run.id, Parameter(name="lr", value=0.1, parameter_type=ParameterType.NUMBER))
    p2 = await api.upsert_experiment_run_artifact(run.id, Parameter(name="lr", value=0.05, parameter_type=ParameterType.NUMBER))
    assert p2.id == p1.id and p2.value == 0.05
    # a dataset is not: a duplicate name on the same run is a conflict
    d = await api.upsert_experiment_run_artifact(run.id, DataSet(name="train", uri="s3://d/train"))
    assert is_id(d.id) and d.uri == "s3://d/train"
    with pytest.raises(mr_exc.ApiException) as ei:
        await api.upsert_experiment_run_artifact(run.id, DataSet(name="train", uri="s3://d/train2"))
    assert ei.value.status == 409, f"duplicate dataset name: {ei.value.status} {ei.value.body}"

    arts = await api.get_artifacts_by_experiment_run_params(run_id=run.id)
    assert _art_kinds(arts) == sorted([("Metric", metric), ("Parameter", "lr"), ("DataSet", "train")])
    (cur,) = [a for a in arts if isinstance(a, Metric)]
    assert cur.id == metric_id and cur.step == steps - 1 and cur.value == VAL(steps - 1)
    assert cur.timestamp == str(1_700_000_000_000 + steps - 1)
    (lr,) = [a for a in arts if isinstance(a, Parameter)]
    assert lr.value == 0.05

    async with api.get_client() as c:
        # artifacts of a run, by type
        by_type = {}
        for t in (ArtType.METRIC, ArtType.PARAMETER, ArtType.DATASET_MINUS_ARTIFACT):
            lst = await c.get_experiment_run_artifacts(run.id, artifact_type=t)
            by_type[t.value] = [(x.actual_instance.artifact_type, x.actual_instance.id) for x in lst.items]
        assert by_type == {"metric": [("metric", metric_id)], "parameter": [("parameter", p1.id)],
                           "dataset-artifact": [("dataset-artifact", d.id)]}
        lst = await c.get_experiment_run_artifacts(run.id, filter_query=f"name = '{metric}'")
        assert [x.actual_instance.id for x in lst.items] == [metric_id]
        # the history is not an artifact of the run list
        assert lst.size == 1

        hist = await c.get_experiment_run_metric_history(run.id)
        items = hist.items
        assert len(items) == steps, f"metric_history of the run: {len(items)} items, want {steps}: {items}"
        assert all(h.name == metric and h.artifact_type == "metric" for h in items), [h.name for h in items]
        assert sorted(h.step for h in items) == list(range(steps))
        assert {h.step: h.value for h in items} == {s: VAL(s) for s in range(steps)}
        assert {h.step: h.timestamp for h in items} == {s: str(1_700_000_000_000 + s) for s in range(steps)}
        assert len({h.id for h in items}) == steps and metric_id not in {h.id for h in items}

        named = await c.get_experiment_run_metric_history(run.id, name=metric)
        assert sorted(h.step for h in named.items) == list(range(steps))
        assert (await c.get_experiment_run_metric_history(run.id, name=uniq("nope"))).items in (None, [])
        sel = await c.get_experiment_run_metric_history(run.id, name=metric, step_ids="3,7,19")
        assert sorted((h.step, h.value) for h in sel.items) == [(3, VAL(3)), (7, VAL(7)), (19, VAL(19))]
        fq = await c.get_experiment_run_metric_history(run.id, filter_query="step >= 15")
        assert sorted(h.step for h in fq.items) == [15, 16, 17, 18, 19]

        # paging through the history
        seen, token = [], None
        for _ in range(steps):
            page = await c.get_experiment_run_metric_history(run.id, page_size="6", order_by="ID", sort_order="ASC",
                                                             next_page_token=token)
            assert len(page.items) <= 6
            seen += [h.id for h in page.items]
            token = page.next_page_token
            if not token:
                break
        assert len(seen) == steps and len(set(seen)) == steps and seen == sorted(seen, key=int)

        # the global history covers every run; name and stepIds select
        glob = await c.get_experiment_runs_metric_history(name=metric)
        assert sorted((h.step, h.value) for h in glob.items) == sorted(
            [(s, VAL(s)) for s in range(steps)] + [(0, 42.0)])
        glob0 = await c.get_experiment_runs_metric_history(name=metric, step_ids="0")
        assert sorted(h.value for h in glob0.items) == [VAL(0), 42.0]
        ohist = await c.get_experiment_run_metric_history(other.id)
        assert [(h.name, h.step, h.value) for h in ohist.items] == [(metric, 0, 42.0)]

    # raw: a bad stepIds is a 400; an unknown run is a 404
    assert_error(http(mr_server, "GET", f"/experiment_runs/{run.id}/metric_history", query={"stepIds": "1,x"}),
                 400, "Bad Request")
    r = http(mr_server, "GET", f"/experiment_runs/{run.id}/metric_history", query={"stepIds": "1,2", "name": metric})
    assert sorted(h["step"] for h in expect(r, 200)["items"]) == [1, 2]


@experiments
@pytest.mark.asyncio
async def test_metric_and_double_values_round_trip_exactly(mr_server):
    """A float sent as JSON (shortest repr) must come back as the same double: 1/11, 1/53, 1/65, 0.1+0.2."""
    api = async_api(mr_server)
    exp = await api.upsert_experiment(Experiment(name=uniq("exp-float")))
    run = await api.upsert_experiment_run(ExperimentRun(name=uniq("run"), experiment_id=exp.id))
    values = [1 / 11, 1 / 53, 1 / 65, 0.1 + 0.2, 1e-300, 123456.789e10]
    bad = []
    for i, v in enumerate(values):
        m = await api.upsert_experiment_run_artifact(run.id, Metric(name=f"m{i}", value=v, step=0))
        if m.value != v:
            bad.append(f"metric value: sent {v!r}, got {m.value!r}")
    back = {a.name: a.value for a in await api.get_artifacts_by_experiment_run_params(run_id=run.id)}
    bad += [f"metric value (GET): sent {v!r}, got {back.get(f'm{i}')!r}" for i, v in enumerate(values)
            if back.get(f"m{i}") != v]
    e2 = await api.upsert_experiment(Experiment(name=uniq("exp-float"), custom_properties={"x": 1 / 11}))
    if e2.custom_properties["x"] != 1 / 11:
        bad.append(f"double custom property: sent {1 / 11!r}, got {e2.custom_properties['x']!r}")
    assert not bad, "doubles do not round-trip:\n" + "\n".join(bad)
