"""The OpenAPI documents the server serves match the server itself and the official client.

The suite runs once per installed client (e2e/run.sh: `.venv` has model-registry 0.3.14, which
speaks /api/model_registry/v1alpha3; `.venv-v1` has 0.3.18, which speaks /api/model_registry/v1).
This module takes the API version from the installed client (clientinfo.py) and, against the real binary on a
fresh SQLite database (one server for the module, started with conftest.py's `_Instance`):

- the document is served as `openapi.json` and `openapi.yaml` under the version's base path, both
  parse, to the same object, and it is OpenAPI 3.1;
- (a) every operation the document lists is routed: called with the ids of objects created first
  through the API, it answers neither 404 nor 405 (nor 5xx); a 400/422 for a minimal body is fine;
  the same holds for every operation the client calls (this part needs no document);
- (b) the document's (method, path) operations are exactly those of the client's generated API
  (`mr_openapi.api.model_registry_service_api.ModelRegistryServiceApi`), path parameter names
  aside; and each common operation has the query parameters and request body the client sends;
- (c) each component schema that the client has a model class of (same name) has the model's JSON
  field names as its properties (oneOf wrappers: the same member schemas; enums: the same values),
  and every model class with fields (Base* excepted) has a schema;
- (d) paths outside the document answer 404 (on v1: experiments, runs and metric history).

PyYAML must be installed in the venv (the YAML document is parsed with it).
"""

from __future__ import annotations

import inspect
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pydantic
import pytest

from clientinfo import API, CLIENT_VERSION
from conftest import _Instance  # the suite's own server helper (fresh database, free port, readiness)

try:
    import yaml
except ImportError:  # reported by the tests that need it
    yaml = None

# --------------------------------------------------------------------------- the client

# The installed client's release and the API prefix it calls (clientinfo.py, shared with the suite).
PREFIX = API
API_VERSION = PREFIX.rsplit("/", 1)[-1]
DOC_PATHS = {fmt: f"{PREFIX}/openapi.{fmt}" for fmt in ("json", "yaml")}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def norm(path: str) -> str:
    """A path template with its parameter names dropped: `/a/{x}/b` -> `/a/{}/b`."""
    return re.sub(r"\{[^}]*\}", "{}", path)


@dataclass(frozen=True)
class ClientOp:
    name: str
    method: str
    path: str  # the full template the client fills, e.g. /api/model_registry/v1/registered_models/{registered_model_id}
    query: frozenset[str]
    body: bool


class _Arg:
    """A stand-in for any argument of a generated serializer (enums are sent as `.value`)."""

    value = "x"

    def __str__(self) -> str:
        return "x"


class _RecordingApiClient:
    """Takes the place of `mr_openapi.ApiClient`: records what a serializer would send."""

    @staticmethod
    def select_header_accept(accepts):
        return accepts[0] if accepts else None

    @staticmethod
    def select_header_content_type(types):
        return types[0] if types else None

    @staticmethod
    def param_serialize(**kw):
        return kw


def client_operations() -> list[ClientOp]:
    """Every operation of the installed client's generated API, from its `_<name>_serialize`
    methods called with stand-in arguments (each builds `method` and `resource_path`)."""
    from mr_openapi.api.model_registry_service_api import ModelRegistryServiceApi

    api = ModelRegistryServiceApi(_RecordingApiClient())
    ops = []
    for attr, fn in inspect.getmembers(ModelRegistryServiceApi, inspect.isfunction):
        m = re.fullmatch(r"_(\w+)_serialize", attr)
        if not m:
            continue
        name = m.group(1)
        assert callable(getattr(ModelRegistryServiceApi, name, None)), f"{attr} without a public {name}()"
        args: dict[str, Any] = {}
        for p in list(inspect.signature(fn).parameters)[1:]:
            args[p] = 0 if p == "_host_index" else None if p.startswith("_") else _Arg()
        req = getattr(api, attr)(**args)
        path = req["resource_path"]
        for key in req["path_params"]:
            assert "{" + key + "}" in path, f"{name}: path parameter {key} not in {path}"
        ops.append(ClientOp(name, req["method"].upper(), path,
                            frozenset(q for q, _ in req["query_params"]), req["body"] is not None))
    assert ops, "found no operations in ModelRegistryServiceApi"
    return ops


CLIENT_OPS = client_operations()


def test_client_speaks_the_api_its_version_says():
    """The version number (importlib.metadata) and the generated paths agree on the API version."""
    prefixes = {re.match(r"/api/model_registry/[^/]+", op.path).group(0) for op in CLIENT_OPS}
    assert prefixes == {PREFIX}, f"model-registry {CLIENT_VERSION}: expected {PREFIX}, the client calls {prefixes}"


# --------------------------------------------------------------------------- HTTP


@dataclass
class Resp:
    status: int
    content_type: str
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def http(srv, method: str, path: str, body: Any = None, query: dict | None = None, accept: str = "*/*") -> Resp:
    url = srv.base_url + urllib.parse.quote(path, safe="/{}")
    if query:
        url += "?" + urllib.parse.urlencode(query)
    headers = {"Accept": accept}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return Resp(r.status, r.headers.get("Content-Type", ""), r.read().decode(errors="replace"))
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers.get("Content-Type", ""), e.read().decode(errors="replace"))


def uniq(prefix: str = "oa") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mr_server():
    """This module's server: SQLite only, one for the module. It overrides conftest's `mr_server`
    (same name, so conftest's report hook attaches the server log to failures)."""
    inst = _Instance("sqlite", f"openapi tests, {API_VERSION}")
    try:
        yield inst.start()
    finally:
        inst.stop()


@dataclass
class Served:
    raw: dict[str, Resp]
    doc: dict | None
    error: str | None


@pytest.fixture(scope="module")
def served(mr_server) -> Served:
    """The version's document as the server serves it: both forms, parsed (or why not)."""
    raw = {fmt: http(mr_server, "GET", p) for fmt, p in DOC_PATHS.items()}
    problems = []
    for fmt, r in raw.items():
        if r.status != 200:
            problems.append(f"GET {DOC_PATHS[fmt]} answered {r.status} {r.text[:200]!r}")
    if problems:
        return Served(raw, None, f"the server does not serve the {API_VERSION} OpenAPI document "
                                 f"(client model-registry {CLIENT_VERSION}): " + "; ".join(problems))
    try:
        doc = json.loads(raw["json"].text)
    except ValueError as e:
        return Served(raw, None, f"GET {DOC_PATHS['json']}: not JSON: {e}")
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        return Served(raw, None, f"GET {DOC_PATHS['json']}: not an OpenAPI document (no `paths` object)")
    return Served(raw, doc, None)


def need_doc(served: Served) -> dict:
    if served.doc is None:
        pytest.fail(served.error, pytrace=False)
    return served.doc


# --------------------------------------------------------------------------- the document


def deref(doc: dict, node: Any) -> Any:
    """Follows local `$ref`s (`#/components/...`) until a node without one."""
    for _ in range(50):
        if not (isinstance(node, dict) and "$ref" in node):
            return node
        ref = node["$ref"]
        assert ref.startswith("#/"), f"non-local $ref {ref!r}"
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    raise AssertionError("$ref chain too long")


def base_path(doc: dict) -> str:
    """The path part of the document's first server URL (`/api/model_registry/v1` or ``)."""
    servers = doc.get("servers") or []
    if not servers:
        return ""
    return urllib.parse.urlsplit(servers[0].get("url", "")).path.rstrip("/")


@dataclass(frozen=True)
class DocOp:
    method: str
    path: str  # full template (base path + path)
    query: frozenset[str]
    body: bool


def doc_operations(doc: dict) -> list[DocOp]:
    base = base_path(doc)
    ops = []
    for path, item in doc["paths"].items():
        item = deref(doc, item)
        shared = [deref(doc, p) for p in item.get("parameters", [])]
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op = item[method]
            params = {(p["in"], p["name"]): p for p in shared}
            params.update({(p["in"], p["name"]): p for p in (deref(doc, x) for x in op.get("parameters", []))})
            query = frozenset(name for (where, name) in params if where == "query")
            ops.append(DocOp(method.upper(), base + path, query, "requestBody" in op))
    return ops


def test_document_is_served_as_json_and_yaml(served):
    """Both forms are served with their content types and parse to the same OpenAPI 3.1 object."""
    doc = need_doc(served)
    if yaml is None:
        pytest.fail("PyYAML is not installed in this venv: add PyYAML to its e2e/requirements*.txt", pytrace=False)
    j, y = served.raw["json"], served.raw["yaml"]
    assert j.content_type.split(";")[0].strip() == "application/json", f"{DOC_PATHS['json']}: {j.content_type!r}"
    assert "yaml" in y.content_type, f"{DOC_PATHS['yaml']}: Content-Type {y.content_type!r}"
    from_yaml = yaml.safe_load(y.text)
    if from_yaml != doc:
        diffs = [k for k in sorted(set(doc) | set(from_yaml or {})) if doc.get(k) != (from_yaml or {}).get(k)]
        detail = ""
        if "paths" in diffs:
            detail = "; paths differing: " + ", ".join(
                p for p in sorted(set(doc["paths"]) | set(from_yaml.get("paths", {})))
                if doc["paths"].get(p) != from_yaml.get("paths", {}).get(p))[:800]
        if "components" in diffs:
            a, b = doc.get("components", {}).get("schemas", {}), from_yaml.get("components", {}).get("schemas", {})
            detail += "; schemas differing: " + ", ".join(s for s in sorted(set(a) | set(b)) if a.get(s) != b.get(s))[:800]
        pytest.fail(f"openapi.yaml and openapi.json parse to different objects (top-level keys {diffs}){detail}",
                    pytrace=False)
    assert str(doc.get("openapi", "")).startswith("3.1."), f"openapi: {doc.get('openapi')!r}, expected 3.1.x"
    assert doc.get("info", {}).get("title"), "info.title is missing"


# --------------------------------------------------------------------------- (b) operations


def test_operations_match_the_client(served):
    """(b) The document's (method, path) set equals the client's, path parameter names aside."""
    doc = need_doc(served)
    documented = {(o.method, norm(o.path)) for o in doc_operations(doc)}
    client = {(o.method, norm(o.path)) for o in CLIENT_OPS}
    missing = sorted(client - documented)
    extra = sorted(documented - client)
    msg = []
    if missing:
        msg.append(f"{len(missing)} operation(s) the client (model-registry {CLIENT_VERSION}) calls are not in the "
                   "document: " + ", ".join(f"{m} {p}" for m, p in missing))
    if extra:
        msg.append(f"{len(extra)} operation(s) in the document the client does not know: "
                   + ", ".join(f"{m} {p}" for m, p in extra))
    assert not msg, "\n".join(msg)
    assert len(documented) == len(doc_operations(doc)), "two document operations differ only in parameter names"


def test_parameters_match_the_client(served):
    """Each operation both know takes the query parameters the client sends, and a request body
    exactly when the client sends one."""
    doc = need_doc(served)
    documented = {(o.method, norm(o.path)): o for o in doc_operations(doc)}
    problems = []
    for c in CLIENT_OPS:
        d = documented.get((c.method, norm(c.path)))
        if d is None:
            continue  # reported by test_operations_match_the_client
        if d.query != c.query:
            problems.append(f"{c.method} {c.path} ({c.name}): query parameters: document {sorted(d.query)}, "
                            f"client {sorted(c.query)}")
        if d.body != c.body:
            problems.append(f"{c.method} {c.path} ({c.name}): request body: document {d.body}, client {c.body}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- (c) schemas


def client_models() -> dict[str, type]:
    import mr_openapi.models as models

    return {n: c for n, c in vars(models).items()
            if inspect.isclass(c) and c.__module__.startswith("mr_openapi.models.")}


def schema_properties(doc: dict, schema: dict, depth: int = 0) -> set[str]:
    """The property names of a schema, through `$ref` and `allOf`."""
    assert depth < 30, "schema nesting too deep"
    props = set((schema.get("properties") or {}).keys())
    if "$ref" in schema:
        props |= schema_properties(doc, deref(doc, {"$ref": schema["$ref"]}), depth + 1)
    for sub in schema.get("allOf") or []:
        props |= schema_properties(doc, sub, depth + 1)
    return props


def schema_members(schema: dict) -> set[str] | None:
    """The names of a oneOf/anyOf schema's members (`$ref` targets), or None."""
    members = schema.get("oneOf") or schema.get("anyOf")
    if members is None:
        return None
    return {m["$ref"].rsplit("/", 1)[-1] if isinstance(m, dict) and "$ref" in m else json.dumps(m) for m in members}


def schema_enum(doc: dict, schema: dict, depth: int = 0) -> set | None:
    """The values of an enum schema (`enum`, or oneOf/anyOf of `const`/one-value `enum`), or None."""
    assert depth < 30
    schema = deref(doc, schema)
    if "enum" in schema:
        return set(schema["enum"])
    for key in ("oneOf", "anyOf", "allOf"):
        subs = schema.get(key)
        if subs:
            values: set = set()
            for s in subs:
                s = deref(doc, s)
                if "const" in s:
                    values.add(s["const"])
                else:
                    v = schema_enum(doc, s, depth + 1)
                    if v is None:
                        return None
                    values |= v
            return values
    return None


# Deliberate gaps between a client's oneOf wrapper and the document's union, with the reason.
# The test requires exactly these members to be missing, so a change either way shows.
KNOWN_MEMBER_GAPS = {
    # The server, like upstream's, refuses proto values (400 "metadataType not found") and never
    # shows them, so the union leaves MetadataProtoValue out; its schema is still documented.
    "MetadataValue": {"MetadataProtoValue"},
}


def test_schemas_match_the_client_models(served):
    """(c) Schema properties = the client model's JSON field names; every concrete model has a schema."""
    doc = need_doc(served)
    schemas = (doc.get("components") or {}).get("schemas") or {}
    problems = []
    compared = 0
    for name, cls in sorted(client_models().items()):
        schema = schemas.get(name)
        if isinstance(cls, type) and issubclass(cls, Enum):
            if schema is not None:
                want = {e.value for e in cls}
                got = schema_enum(doc, schema)
                compared += 1
                if got != want:
                    problems.append(f"{name}: enum values: document {sorted(map(str, got)) if got is not None else got}, "
                                    f"client {sorted(want)}")
            continue
        if not issubclass(cls, pydantic.BaseModel):
            continue
        fields = cls.model_fields
        if schema is None:
            if fields and not name.startswith("Base"):
                problems.append(f"{name}: the client has this model (fields {sorted(f.alias or k for k, f in fields.items())}); "
                                "the document has no schema of that name")
            continue
        compared += 1
        schema = deref(doc, schema)
        if "actual_instance" in fields:  # a generated oneOf/anyOf wrapper
            key = "one_of_schemas" if "one_of_schemas" in fields else "any_of_schemas"
            want = set(fields[key].default) - KNOWN_MEMBER_GAPS.get(name, set())
            got = schema_members(schema)
            if got != want:
                problems.append(f"{name}: members: document {sorted(got) if got is not None else 'no oneOf/anyOf'}, "
                                f"client {sorted(want)}")
            continue
        want = {f.alias or k for k, f in fields.items()}
        got = schema_properties(doc, schema)
        if got != want:
            problems.append(f"{name}: properties only in the document {sorted(got - want)}, "
                            f"only in the client {sorted(want - got)}")
    assert compared, "no document schema has a client model of the same name"
    assert not problems, f"{len(problems)} schema(s) differ from model-registry {CLIENT_VERSION}'s models:\n" + "\n".join(problems)


# --------------------------------------------------------------------------- (a) every operation is routed

# The id a path parameter takes, by the segment before it; the object a find endpoint finds.
ID_AFTER_SEGMENT = {
    "registered_models": "rm", "model_versions": "mv", "model_artifacts": "ma", "artifacts": "art",
    "serving_environments": "se", "inference_services": "is", "serves": "serve",
    "experiments": "exp", "experiment_runs": "run",
}
FOUND_BY = {
    "registered_model": "rm", "model_version": "mv", "model_artifact": "ma", "artifact": "art",
    "serving_environment": "se", "inference_service": "is", "experiment": "exp", "experiment_run": "run",
}


@dataclass
class Seeded:
    ids: dict[str, str]
    external_ids: dict[str, str]


def _create(srv, path: str, body: dict) -> dict:
    r = http(srv, "POST", PREFIX + path, body)
    assert r.status in (200, 201), f"setup: POST {PREFIX}{path} {body} answered {r.status} {r.text[:300]}"
    return r.json()


@pytest.fixture(scope="module")
def seeded(mr_server) -> Seeded:
    """One object of each kind the version serves, created through the API, each with an externalId."""
    ids: dict[str, str] = {}
    ext: dict[str, str] = {}

    def make(kind: str, path: str, body: dict) -> None:
        ext[kind] = uniq(f"ext-{kind}")
        ids[kind] = _create(mr_server, path, {**body, "externalId": ext[kind]})["id"]

    make("rm", "/registered_models", {"name": uniq("rm")})
    make("mv", "/model_versions", {"name": uniq("mv"), "registeredModelId": ids["rm"]})
    make("ma", f"/model_versions/{ids['mv']}/artifacts",
         {"artifactType": "model-artifact", "name": uniq("ma"), "uri": "s3://bucket/model"})
    make("art", "/artifacts", {"artifactType": "doc-artifact", "name": uniq("doc"), "uri": "s3://bucket/readme"})
    make("se", "/serving_environments", {"name": uniq("se")})
    make("is", "/inference_services", {"name": uniq("is"), "registeredModelId": ids["rm"],
                                       "servingEnvironmentId": ids["se"], "modelVersionId": ids["mv"]})
    make("serve", f"/inference_services/{ids['is']}/serves", {"modelVersionId": ids["mv"]})
    if any("/experiments" in op.path for op in CLIENT_OPS):
        make("exp", "/experiments", {"name": uniq("exp")})
        make("run", "/experiment_runs", {"name": uniq("run"), "experimentId": ids["exp"]})
        _create(mr_server, f"/experiment_runs/{ids['run']}/artifacts",
                {"artifactType": "metric", "name": "accuracy", "value": 0.5, "step": 1})
    return Seeded(ids, ext)


def _probe_body(method: str, rel: str, ids: dict[str, str]) -> dict | None:
    """A minimal valid body for a write (`rel` is the normalized path below the base path)."""
    if method == "POST":
        creates = {
            "/registered_models": {"name": uniq("rm")},
            "/model_versions": {"name": uniq("mv"), "registeredModelId": ids.get("rm")},
            "/registered_models/{}/versions": {"name": uniq("mv"), "registeredModelId": ids.get("rm")},
            "/model_artifacts": {"artifactType": "model-artifact", "name": uniq("ma"), "uri": "s3://b/m"},
            "/artifacts": {"artifactType": "doc-artifact", "name": uniq("doc"), "uri": "s3://b/d"},
            "/model_versions/{}/artifacts": {"artifactType": "doc-artifact", "name": uniq("doc"), "uri": "s3://b/d"},
            "/serving_environments": {"name": uniq("se")},
            "/inference_services": {"name": uniq("is"), "registeredModelId": ids.get("rm"),
                                    "servingEnvironmentId": ids.get("se")},
            "/serving_environments/{}/inference_services": {"name": uniq("is"), "registeredModelId": ids.get("rm"),
                                                            "servingEnvironmentId": ids.get("se")},
            "/inference_services/{}/serves": {"modelVersionId": ids.get("mv")},
            "/experiments": {"name": uniq("exp")},
            "/experiment_runs": {"name": uniq("run"), "experimentId": ids.get("exp")},
            "/experiments/{}/experiment_runs": {"name": uniq("run"), "experimentId": ids.get("exp")},
            "/experiment_runs/{}/artifacts": {"artifactType": "metric", "name": "loss", "value": 0.25, "step": 2},
        }
        return creates.get(rel, {})
    if method in ("PATCH", "PUT"):
        if rel == "/artifacts/{}":
            return {"artifactType": "doc-artifact", "description": "probe"}
        if rel == "/model_artifacts/{}":
            return {"artifactType": "model-artifact", "description": "probe"}
        return {"description": "probe"}
    return None


def probe(srv, seeded: Seeded, ops: list[tuple[str, str]]) -> list[str]:
    """Calls each (method, full path template) with real ids; returns the failures."""
    failures = []
    order = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 9}
    for method, path in sorted(ops, key=lambda o: (order.get(o[0], 5), o[1])):
        if not path.startswith(PREFIX + "/"):
            failures.append(f"{method} {path}: not under {PREFIX}")
            continue
        rel = norm(path[len(PREFIX):])
        segs = rel.strip("/").split("/")
        filled, missing = [], None
        for i, seg in enumerate(segs):
            if seg == "{}":
                kind = ID_AFTER_SEGMENT.get(segs[i - 1] if i else "")
                if kind is None or kind not in seeded.ids:
                    missing = f"no object to take an id from for the parameter after /{segs[i - 1] if i else ''}"
                    break
                filled.append(seeded.ids[kind])
            else:
                filled.append(seg)
        if missing:
            failures.append(f"{method} {path}: cannot call it: {missing}")
            continue
        url_path = PREFIX + "/" + "/".join(filled)
        query = None
        if method == "GET" and len(segs) == 1 and segs[0] in FOUND_BY and FOUND_BY[segs[0]] in seeded.external_ids:
            query = {"externalId": seeded.external_ids[FOUND_BY[segs[0]]]}
        body = _probe_body(method, rel, seeded.ids)
        r = http(srv, method, url_path, body, query)
        if r.status in (404, 405) or r.status >= 500:
            q = f"?{urllib.parse.urlencode(query)}" if query else ""
            b = f" {json.dumps(body)}" if body is not None else ""
            failures.append(f"{method} {url_path}{q}{b} (documented as {path}) answered {r.status} {r.text[:200]!r}")
    return failures


def test_every_client_operation_is_routed(mr_server, seeded):
    """Every operation the client calls, with existing ids, answers something other than 404/405/5xx."""
    failures = probe(mr_server, seeded, [(op.method, op.path) for op in CLIENT_OPS])
    assert not failures, f"{len(failures)} of the client's {len(CLIENT_OPS)} operations are not served:\n" + "\n".join(failures)


def test_every_documented_operation_is_routed(mr_server, served, seeded):
    """(a) Every operation the document lists, with existing ids, answers something other than 404/405/5xx."""
    doc = need_doc(served)
    ops = [(o.method, o.path) for o in doc_operations(doc)]
    assert ops, "the document lists no operations"
    failures = probe(mr_server, seeded, ops)
    assert not failures, f"{len(failures)} of the document's {len(ops)} operations are not served:\n" + "\n".join(failures)


# --------------------------------------------------------------------------- (d) what is not documented


ABSENT = ["/no_such_collection", "/registered_models/1/no_such_child"]
if API_VERSION == "v1":  # experiment tracking exists in v1alpha3 only
    ABSENT += ["/experiments", "/experiment_runs", "/experiment_runs/metric_history"]


@pytest.mark.parametrize("rel", ABSENT)
def test_paths_not_documented_answer_404(mr_server, served, rel):
    """(d) A path outside the document answers 404 (and, when the document is served, is not in it)."""
    r = http(mr_server, "GET", PREFIX + rel)
    assert r.status == 404, f"GET {PREFIX}{rel} answered {r.status} {r.text[:200]!r}, expected 404"
    if served.doc is not None:
        documented = {norm(o.path) for o in doc_operations(served.doc)}
        assert norm(PREFIX + rel) not in documented, f"{PREFIX}{rel} is in the document"
