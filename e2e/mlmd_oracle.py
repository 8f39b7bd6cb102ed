#!/usr/bin/env python3
"""MLMD oracle: drive the real ML Metadata library (ml-metadata 1.17.1) from the Rust tests.

Usage:
    mlmd_oracle.py --db <url> [--upgrade] <command> [options]

URLs (the forms produced by testkit's TestDb::url()):
    sqlite:///abs/path/file.db   sqlite://relative/path.db   sqlite:path.db   (a bare path works too)
    mysql://user:password@host:port/database
    postgres://user[:password]@host:port/database   (postgresql:// too)

Commands:
    create          open the store (MLMD creates its schema on an empty database), exit 0
    seed            write the known data set (see SEED below), print JSON of the ids created
    seed-values     write VALUES (every value kind, proto values included; a path of mixed
                    steps), check it, print JSON of the ids
    seed-registry   write a model, version and artifact as the MLMD-backed registry did
    verify          check that exactly the seeded data is present (values, properties, links);
                    print a JSON summary, exit 1 with a message on any difference
                    (--strict: also fail on any artifact/context/execution that is not seed data)
    roundtrip       create a uniquely suffixed type/artifact/context/execution/links, read them
                    back, compare, exit 0 (JSON summary) or 1
    dump (aliases: dump-artifacts, get)
                    print every type, artifact, context, execution, attribution, association,
                    event and parent-context link as deterministic (sorted) JSON
                    (MLMD's type listings leave out its own simple types mlmd.*; text MLMD
                    returns as bytes is shown as {"bytes_b64": ...})

Exit codes: 0 ok; 1 MLMD error (message on stderr, prefixed "mlmd_oracle: <ExceptionClass>: ")
or a verify/roundtrip mismatch (prefixed "mlmd_oracle: verify failed:" / "roundtrip failed:");
2 bad command line.
"""

import argparse
import base64
import json
import os
import re
import sys
import urllib.parse
import uuid

# Keep MLMD's glog INFO chatter ("Connecting to database.") off stderr unless asked for.
os.environ.setdefault("GLOG_minloglevel", "1")

from google.protobuf import json_format  # noqa: E402
from ml_metadata.metadata_store import metadata_store  # noqa: E402
from ml_metadata.proto import metadata_store_pb2 as pb  # noqa: E402


class Mismatch(Exception):
    pass


# --------------------------------------------------------------------------- connection


def connection_config(url):
    cfg = pb.ConnectionConfig()
    if url.startswith("sqlite:") or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
        if url.startswith("sqlite://"):
            path = url[len("sqlite://"):]
        elif url.startswith("sqlite:"):
            path = url[len("sqlite:"):]
        else:
            path = url
        path = path.split("?", 1)[0]
        if not path:
            raise SystemExit("mlmd_oracle: empty sqlite path in --db")
        cfg.sqlite.filename_uri = path
        cfg.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        return cfg
    u = urllib.parse.urlsplit(url)
    user = urllib.parse.unquote(u.username or "")
    password = urllib.parse.unquote(u.password or "")
    database = urllib.parse.unquote(u.path.lstrip("/"))
    host = u.hostname or "127.0.0.1"
    if u.scheme in ("mysql", "mariadb"):
        cfg.mysql.host = host
        cfg.mysql.port = u.port or 3306
        cfg.mysql.database = database
        cfg.mysql.user = user
        if password:
            cfg.mysql.password = password
        return cfg
    if u.scheme in ("postgres", "postgresql"):
        cfg.postgresql.host = host
        cfg.postgresql.port = str(u.port or 5432)
        cfg.postgresql.dbname = database
        cfg.postgresql.user = user
        if password:
            cfg.postgresql.password = password
        # The database exists (TestDb created it); MLMD must not try to create it.
        cfg.postgresql.skip_db_creation = True
        return cfg
    raise SystemExit(f"mlmd_oracle: unsupported --db url scheme: {u.scheme!r}")


def open_store(args):
    return metadata_store.MetadataStore(
        connection_config(args.db), enable_upgrade_migration=args.upgrade
    )


# --------------------------------------------------------------------------- normalization


def dt_name(v):
    return pb.PropertyType.Name(v)


def value_json(v):
    kind = v.WhichOneof("value")
    if kind == "int_value":
        return {"int": v.int_value}
    if kind == "double_value":
        return {"double": v.double_value}
    if kind == "string_value":
        return {"string": v.string_value}
    if kind == "bool_value":
        return {"bool": v.bool_value}
    if kind == "struct_value":
        return {"struct": json_format.MessageToDict(v.struct_value)}
    if kind == "proto_value":
        return {
            "proto": {
                "type_url": v.proto_value.type_url,
                "value_b64": base64.b64encode(v.proto_value.value).decode(),
            }
        }
    return {"unset": None}


def props_json(m):
    return {k: value_json(m[k]) for k in sorted(m)}


def set_value(target, value):
    """Set a Value message from a {"int"|"double"|"string"|"bool"|"struct": x} dict."""
    ((kind, x),) = value.items()
    if kind == "int":
        target.int_value = x
    elif kind == "double":
        target.double_value = x
    elif kind == "string":
        target.string_value = x
    elif kind == "bool":
        target.bool_value = x
    elif kind == "struct":
        target.struct_value.update(x)
    elif kind == "proto":
        target.proto_value.type_url = x["type_url"]
        target.proto_value.value = base64.b64decode(x["value_b64"])
    else:
        raise ValueError(kind)


def set_props(msg_map, props):
    for k, v in props.items():
        set_value(msg_map[k], v)


def type_json(t):
    d = {
        "id": t.id,
        "name": t.name,
        "version": t.version if t.HasField("version") else None,
        "description": t.description if t.HasField("description") else None,
        "external_id": t.external_id if t.HasField("external_id") else None,
        "properties": {k: dt_name(t.properties[k]) for k in sorted(t.properties)},
    }
    if hasattr(t, "base_type") and t.HasField("base_type"):
        d["base_type"] = type(t).SystemDefinedBaseType.Name(t.base_type)
    return d


def opt(m, field):
    return getattr(m, field) if m.HasField(field) else None


def artifact_json(a, type_names):
    return {
        "id": a.id,
        "type": type_names.get(a.type_id, a.type),
        "type_id": a.type_id,
        "name": opt(a, "name"),
        "uri": opt(a, "uri"),
        "state": pb.Artifact.State.Name(a.state) if a.HasField("state") else None,
        "external_id": opt(a, "external_id"),
        "properties": props_json(a.properties),
        "custom_properties": props_json(a.custom_properties),
        "create_time_since_epoch": a.create_time_since_epoch,
        "last_update_time_since_epoch": a.last_update_time_since_epoch,
    }


def execution_json(e, type_names):
    return {
        "id": e.id,
        "type": type_names.get(e.type_id, e.type),
        "type_id": e.type_id,
        "name": opt(e, "name"),
        "last_known_state": pb.Execution.State.Name(e.last_known_state)
        if e.HasField("last_known_state")
        else None,
        "external_id": opt(e, "external_id"),
        "properties": props_json(e.properties),
        "custom_properties": props_json(e.custom_properties),
        "create_time_since_epoch": e.create_time_since_epoch,
        "last_update_time_since_epoch": e.last_update_time_since_epoch,
    }


def context_json(c, type_names):
    return {
        "id": c.id,
        "type": type_names.get(c.type_id, c.type),
        "type_id": c.type_id,
        "name": opt(c, "name"),
        "external_id": opt(c, "external_id"),
        "properties": props_json(c.properties),
        "custom_properties": props_json(c.custom_properties),
        "create_time_since_epoch": c.create_time_since_epoch,
        "last_update_time_since_epoch": c.last_update_time_since_epoch,
    }


def event_json(ev):
    steps = []
    for s in ev.path.steps:
        if s.HasField("index"):
            steps.append({"index": s.index})
        else:
            steps.append({"key": s.key})
    return {
        "artifact_id": ev.artifact_id,
        "execution_id": ev.execution_id,
        "type": pb.Event.Type.Name(ev.type),
        "path": steps,
        "milliseconds_since_epoch": opt(ev, "milliseconds_since_epoch"),
    }


def dump_store(store):
    """Everything in the store, as sorted JSON-able dicts (ids included)."""
    # The get_*_types() listings of MLMD 1.17.1 leave external_id out; get_*_types_by_id has it.
    def full(types, by_id):
        ids = [t.id for t in types]
        return sorted(by_id(ids) if ids else [], key=lambda t: (t.name, t.version, t.id))

    a_types = full(store.get_artifact_types(), store.get_artifact_types_by_id)
    c_types = full(store.get_context_types(), store.get_context_types_by_id)
    e_types = full(store.get_execution_types(), store.get_execution_types_by_id)
    a_names = {t.id: t.name for t in a_types}
    c_names = {t.id: t.name for t in c_types}
    e_names = {t.id: t.name for t in e_types}
    artifacts = sorted(store.get_artifacts(), key=lambda x: x.id)
    contexts = sorted(store.get_contexts(), key=lambda x: x.id)
    executions = sorted(store.get_executions(), key=lambda x: x.id)
    attributions, associations, parents = [], [], []
    for c in contexts:
        for a in store.get_artifacts_by_context(c.id):
            attributions.append({"context_id": c.id, "artifact_id": a.id})
        for e in store.get_executions_by_context(c.id):
            associations.append({"context_id": c.id, "execution_id": e.id})
        for p in store.get_parent_contexts_by_context(c.id):
            parents.append({"child_id": c.id, "parent_id": p.id})
    events = []
    if executions:
        events = [event_json(ev) for ev in store.get_events_by_execution_ids([e.id for e in executions])]
    events.sort(key=lambda e: (e["execution_id"], e["artifact_id"], e["type"], json.dumps(e["path"])))
    key = lambda d: sorted(d.items())
    return {
        "artifact_types": [type_json(t) for t in a_types],
        "context_types": [type_json(t) for t in c_types],
        "execution_types": [type_json(t) for t in e_types],
        "artifacts": [artifact_json(a, a_names) for a in artifacts],
        "contexts": [context_json(c, c_names) for c in contexts],
        "executions": [execution_json(e, e_names) for e in executions],
        "attributions": sorted(attributions, key=key),
        "associations": sorted(associations, key=key),
        "parent_contexts": sorted(parents, key=key),
        "events": events,
    }


# --------------------------------------------------------------------------- the seed data set

SEED_ARTIFACT_TYPE = "seed.Model"
SEED_CONTEXT_TYPE = "seed.Project"
SEED_EXECUTION_TYPE = "seed.Train"
SEED_EVENT_MS = 1700000000123

SEED = {
    "artifact_type": {
        "name": SEED_ARTIFACT_TYPE,
        "version": None,
        "description": "seeded by mlmd_oracle",
        "external_id": None,
        "properties": {"size_bytes": "INT", "accuracy": "DOUBLE", "framework": "STRING"},
        "base_type": "MODEL",
    },
    "context_type": {
        "name": SEED_CONTEXT_TYPE,
        "version": None,
        "description": None,
        "external_id": None,
        "properties": {"owner": "STRING", "priority": "INT"},
    },
    "execution_type": {
        "name": SEED_EXECUTION_TYPE,
        "version": None,
        "description": None,
        "external_id": None,
        "properties": {"epochs": "INT"},
    },
    "artifacts": [
        {
            "name": "seed-model-1",
            "uri": "s3://seed-bucket/models/1",
            "state": "LIVE",
            "external_id": "seed-ext-artifact-1",
            "properties": {
                "size_bytes": {"int": 1048576},
                "accuracy": {"double": 0.875},
                "framework": {"string": "onnx"},
            },
            "custom_properties": {
                "c_int": {"int": -7},
                "c_double": {"double": 3.25},
                "c_string": {"string": "h\u00e9llo w\u00f6rld \u2713"},
                "c_bool": {"bool": True},
                "c_struct": {"struct": {"a": 1.0, "b": ["x", True, None], "c": {"d": "e"}}},
            },
        },
        {
            "name": "seed-model-2",
            "uri": "file:///tmp/seed-model-2",
            "state": "PENDING",
            "external_id": None,
            "properties": {"size_bytes": {"int": 2147483647}, "framework": {"string": ""}},
            "custom_properties": {"c_bool": {"bool": False}, "c_double": {"double": -1.5}},
        },
    ],
    "contexts": [
        {
            "name": "seed-parent",
            "external_id": None,
            "properties": {"owner": {"string": "team-a"}},
            "custom_properties": {},
        },
        {
            "name": "seed-context",
            "external_id": "seed-ext-context",
            "properties": {"owner": {"string": "alice"}, "priority": {"int": 2}},
            "custom_properties": {
                "c_string": {"string": "ctx"},
                "c_struct": {"struct": {"tags": ["t1", "t2"]}},
            },
        },
    ],
    "executions": [
        {
            "name": "seed-execution",
            "last_known_state": "COMPLETE",
            "external_id": None,
            "properties": {"epochs": {"int": 3}},
            "custom_properties": {"note": {"string": "first run"}, "lr": {"double": 0.001}},
        }
    ],
    # links by name
    "attributions": [("seed-context", "seed-model-1"), ("seed-context", "seed-model-2")],
    "associations": [("seed-context", "seed-execution")],
    "parent_contexts": [("seed-context", "seed-parent")],  # (child, parent)
    "events": [
        {
            "artifact": "seed-model-1",
            "execution": "seed-execution",
            "type": "OUTPUT",
            "path": [{"index": 0}, {"key": "model"}],
            "milliseconds_since_epoch": SEED_EVENT_MS,
        },
        {
            "artifact": "seed-model-2",
            "execution": "seed-execution",
            "type": "INPUT",
            "path": [],
            "milliseconds_since_epoch": SEED_EVENT_MS + 1,
        },
    ],
}


def make_type(cls, spec):
    t = cls()
    t.name = spec["name"]
    if spec.get("version") is not None:
        t.version = spec["version"]
    if spec.get("description") is not None:
        t.description = spec["description"]
    if spec.get("external_id") is not None:
        t.external_id = spec["external_id"]
    for k, v in spec["properties"].items():
        t.properties[k] = pb.PropertyType.Value(v)
    if spec.get("base_type"):
        t.base_type = cls.SystemDefinedBaseType.Value(spec["base_type"])
    return t


def make_node(cls, type_id, spec):
    n = cls()
    n.type_id = type_id
    n.name = spec["name"]
    if spec.get("uri") is not None:
        n.uri = spec["uri"]
    if spec.get("state") is not None:
        n.state = pb.Artifact.State.Value(spec["state"])
    if spec.get("last_known_state") is not None:
        n.last_known_state = pb.Execution.State.Value(spec["last_known_state"])
    if spec.get("external_id") is not None:
        n.external_id = spec["external_id"]
    set_props(n.properties, spec["properties"])
    set_props(n.custom_properties, spec["custom_properties"])
    return n


def make_event(artifact_id, execution_id, spec):
    ev = pb.Event()
    ev.artifact_id = artifact_id
    ev.execution_id = execution_id
    ev.type = pb.Event.Type.Value(spec["type"])
    for s in spec["path"]:
        step = ev.path.steps.add()
        if "index" in s:
            step.index = s["index"]
        else:
            step.key = s["key"]
    if spec.get("milliseconds_since_epoch") is not None:
        ev.milliseconds_since_epoch = spec["milliseconds_since_epoch"]
    return ev


def write_graph(store, spec):
    """Write a data set shaped like SEED; return the ids by name."""
    at = store.put_artifact_type(make_type(pb.ArtifactType, spec["artifact_type"]))
    ct = store.put_context_type(make_type(pb.ContextType, spec["context_type"]))
    et = store.put_execution_type(make_type(pb.ExecutionType, spec["execution_type"]))
    a_ids = store.put_artifacts([make_node(pb.Artifact, at, a) for a in spec["artifacts"]])
    c_ids = store.put_contexts([make_node(pb.Context, ct, c) for c in spec["contexts"]])
    e_ids = store.put_executions([make_node(pb.Execution, et, e) for e in spec["executions"]])
    a_by = dict(zip([a["name"] for a in spec["artifacts"]], a_ids))
    c_by = dict(zip([c["name"] for c in spec["contexts"]], c_ids))
    e_by = dict(zip([e["name"] for e in spec["executions"]], e_ids))
    store.put_events(
        [make_event(a_by[ev["artifact"]], e_by[ev["execution"]], ev) for ev in spec["events"]]
    )
    store.put_attributions_and_associations(
        [pb.Attribution(context_id=c_by[c], artifact_id=a_by[a]) for c, a in spec["attributions"]],
        [pb.Association(context_id=c_by[c], execution_id=e_by[e]) for c, e in spec["associations"]],
    )
    store.put_parent_contexts(
        [pb.ParentContext(child_id=c_by[c], parent_id=c_by[p]) for c, p in spec["parent_contexts"]]
    )
    return {
        "artifact_type_id": at,
        "context_type_id": ct,
        "execution_type_id": et,
        "artifact_ids": a_by,
        "context_ids": c_by,
        "execution_ids": e_by,
    }


def strip_volatile(d):
    d = dict(d)
    for k in ("id", "type_id", "create_time_since_epoch", "last_update_time_since_epoch"):
        d.pop(k, None)
    return d


def expect_eq(what, got, want, problems):
    if got != want:
        problems.append(
            f"{what}: got {json.dumps(got, sort_keys=True)} want {json.dumps(want, sort_keys=True)}"
        )


def expected_type(spec):
    d = {k: spec.get(k) for k in ("name", "version", "description", "external_id")}
    d["properties"] = dict(sorted(spec["properties"].items()))
    if spec.get("base_type"):
        d["base_type"] = spec["base_type"]
    return d


def expected_node(type_name, spec, kind):
    d = {
        "type": type_name,
        "name": spec["name"],
        "external_id": spec.get("external_id"),
        "properties": dict(sorted(spec["properties"].items())),
        "custom_properties": dict(sorted(spec["custom_properties"].items())),
    }
    if kind == "artifact":
        d["uri"] = spec.get("uri")
        d["state"] = spec.get("state")
    if kind == "execution":
        d["last_known_state"] = spec.get("last_known_state")
    return d


def check_graph(store, spec, strict=False):
    """Compare the store's content for the data set `spec` with the spec. Returns (problems, summary)."""
    problems = []
    dump = dump_store(store)

    def find_type(kind, name):
        ts = [t for t in dump[kind + "_types"] if t["name"] == name]
        if len(ts) != 1:
            problems.append(f"{kind} type {name}: found {len(ts)} types")
            return None
        return ts[0]

    types = {}
    for kind in ("artifact", "context", "execution"):
        tspec = spec[kind + "_type"]
        t = find_type(kind, tspec["name"])
        if t is None:
            continue
        types[kind] = t
        got = strip_volatile(t)
        expect_eq(f"{kind} type {tspec['name']}", got, expected_type(tspec), problems)

    ids = {}
    plural = {"artifact": "artifacts", "context": "contexts", "execution": "executions"}
    for kind in ("artifact", "context", "execution"):
        t = types.get(kind)
        if t is None:
            continue
        nodes = [n for n in dump[plural[kind]] if n["type_id"] == t["id"]]
        want_names = sorted(n["name"] for n in spec[plural[kind]])
        got_names = sorted(n["name"] for n in nodes)
        expect_eq(f"{plural[kind]} of type {t['name']}", got_names, want_names, problems)
        by_name = {n["name"]: n for n in nodes}
        for nspec in spec[plural[kind]]:
            n = by_name.get(nspec["name"])
            if n is None:
                continue
            ids[(kind, nspec["name"])] = n["id"]
            expect_eq(
                f"{kind} {nspec['name']}",
                strip_volatile(n),
                expected_node(t["name"], nspec, kind),
                problems,
            )
            if n["create_time_since_epoch"] <= 0 or n["last_update_time_since_epoch"] <= 0:
                problems.append(f"{kind} {nspec['name']}: timestamps not set: {n}")

    def id_of(kind, name):
        return ids.get((kind, name))

    seed_ctx = {id_of("context", c["name"]) for c in spec["contexts"]}
    seed_art = {id_of("artifact", a["name"]) for a in spec["artifacts"]}
    seed_exe = {id_of("execution", e["name"]) for e in spec["executions"]}
    got_attr = sorted(
        (x["context_id"], x["artifact_id"])
        for x in dump["attributions"]
        if x["context_id"] in seed_ctx or x["artifact_id"] in seed_art
    )
    want_attr = sorted((id_of("context", c), id_of("artifact", a)) for c, a in spec["attributions"])
    expect_eq("attributions", got_attr, want_attr, problems)
    got_assoc = sorted(
        (x["context_id"], x["execution_id"])
        for x in dump["associations"]
        if x["context_id"] in seed_ctx or x["execution_id"] in seed_exe
    )
    want_assoc = sorted((id_of("context", c), id_of("execution", e)) for c, e in spec["associations"])
    expect_eq("associations", got_assoc, want_assoc, problems)
    got_parents = sorted(
        (x["child_id"], x["parent_id"])
        for x in dump["parent_contexts"]
        if x["child_id"] in seed_ctx or x["parent_id"] in seed_ctx
    )
    want_parents = sorted((id_of("context", c), id_of("context", p)) for c, p in spec["parent_contexts"])
    expect_eq("parent contexts", got_parents, want_parents, problems)
    got_events = sorted(
        json.dumps(e, sort_keys=True)
        for e in dump["events"]
        if e["execution_id"] in seed_exe or e["artifact_id"] in seed_art
    )
    want_events = sorted(
        json.dumps(
            event_json(make_event(id_of("artifact", ev["artifact"]) or 0, id_of("execution", ev["execution"]) or 0, ev)),
            sort_keys=True,
        )
        for ev in spec["events"]
    )
    expect_eq("events", got_events, want_events, problems)

    # The direct lookups must agree with the listing.
    for a in spec["artifacts"]:
        got = store.get_artifact_by_type_and_name(
            spec["artifact_type"]["name"], a["name"], type_version=spec["artifact_type"].get("version")
        )
        if got is None or got.id != id_of("artifact", a["name"]):
            problems.append(f"get_artifact_by_type_and_name({a['name']}) -> {got}")
    for c in spec["contexts"]:
        got = store.get_context_by_type_and_name(
            spec["context_type"]["name"], c["name"], type_version=spec["context_type"].get("version")
        )
        if got is None or got.id != id_of("context", c["name"]):
            problems.append(f"get_context_by_type_and_name({c['name']}) -> {got}")
    for e in spec["executions"]:
        got = store.get_execution_by_type_and_name(
            spec["execution_type"]["name"], e["name"], type_version=spec["execution_type"].get("version")
        )
        if got is None or got.id != id_of("execution", e["name"]):
            problems.append(f"get_execution_by_type_and_name({e['name']}) -> {got}")

    if strict:
        extra = [
            f"{k[:-1]} {n['type']}/{n['name']}"
            for k in ("artifacts", "contexts", "executions")
            for n in dump[k]
            if n["id"] not in (seed_art | seed_ctx | seed_exe)
        ]
        if extra:
            problems.append("unexpected entities (--strict): " + ", ".join(extra))

    summary = {
        "artifacts": len(spec["artifacts"]),
        "contexts": len(spec["contexts"]),
        "executions": len(spec["executions"]),
        "attributions": len(want_attr),
        "associations": len(want_assoc),
        "parent_contexts": len(want_parents),
        "events": len(want_events),
        "artifact_ids": {a["name"]: id_of("artifact", a["name"]) for a in spec["artifacts"]},
        "context_ids": {c["name"]: id_of("context", c["name"]) for c in spec["contexts"]},
        "execution_ids": {e["name"]: id_of("execution", e["name"]) for e in spec["executions"]},
    }
    return problems, summary


# --------------------------------------------------------------------------- commands


def cmd_create(store, args):
    print(json.dumps({"ok": True}))


def cmd_seed(store, args):
    print(json.dumps(write_graph(store, SEED), sort_keys=True))


def cmd_verify(store, args):
    problems, summary = check_graph(store, SEED, strict=args.strict)
    if problems:
        raise Mismatch("verify failed:\n  " + "\n  ".join(problems))
    print(json.dumps(dict(summary, ok=True), sort_keys=True))


def roundtrip_spec(sfx):
    return {
        "artifact_type": {
            "name": f"rt.Model.{sfx}",
            "version": "v1",
            "description": "roundtrip type",
            "external_id": f"rt-ext-at-{sfx}",
            "properties": {"p_int": "INT", "p_double": "DOUBLE", "p_string": "STRING", "p_bool": "BOOLEAN", "p_struct": "STRUCT"},
        },
        "context_type": {
            "name": f"rt.Context.{sfx}",
            "version": None,
            "description": None,
            "external_id": None,
            "properties": {"p_string": "STRING"},
        },
        "execution_type": {
            "name": f"rt.Exec.{sfx}",
            "version": None,
            "description": None,
            "external_id": None,
            "properties": {"p_int": "INT"},
        },
        "artifacts": [
            {
                "name": f"rt-artifact-{sfx}",
                "uri": f"s3://rt/{sfx}",
                "state": "LIVE",
                "external_id": f"rt-ext-a-{sfx}",
                "properties": {
                    "p_int": {"int": 42},
                    "p_double": {"double": 2.5},
                    "p_string": {"string": "typed"},
                    "p_bool": {"bool": True},
                    "p_struct": {"struct": {"k": [1.0, "two"]}},
                },
                "custom_properties": {
                    "c_int": {"int": -1},
                    "c_double": {"double": 1e-3},
                    "c_string": {"string": "custom \u00fc"},
                    "c_bool": {"bool": False},
                    "c_struct": {"struct": {"nested": {"x": None}}},
                },
            }
        ],
        "contexts": [
            {"name": f"rt-parent-{sfx}", "external_id": None, "properties": {}, "custom_properties": {}},
            {
                "name": f"rt-context-{sfx}",
                "external_id": f"rt-ext-c-{sfx}",
                "properties": {"p_string": {"string": "ctx"}},
                "custom_properties": {"c_int": {"int": 7}},
            },
        ],
        "executions": [
            {
                "name": f"rt-exec-{sfx}",
                "last_known_state": "RUNNING",
                "external_id": None,
                "properties": {"p_int": {"int": 1}},
                "custom_properties": {"c_string": {"string": "e"}},
            }
        ],
        "attributions": [(f"rt-context-{sfx}", f"rt-artifact-{sfx}")],
        "associations": [(f"rt-context-{sfx}", f"rt-exec-{sfx}")],
        "parent_contexts": [(f"rt-context-{sfx}", f"rt-parent-{sfx}")],
        "events": [
            {
                "artifact": f"rt-artifact-{sfx}",
                "execution": f"rt-exec-{sfx}",
                "type": "OUTPUT",
                "path": [{"key": "out"}, {"index": 3}],
                "milliseconds_since_epoch": 1234567890123,
            }
        ],
    }


def cmd_roundtrip(store, args):
    sfx = args.suffix or uuid.uuid4().hex[:8]
    spec = roundtrip_spec(sfx)
    ids = write_graph(store, spec)
    problems, _ = check_graph(store, spec)
    # Update: change a typed and a custom property, read back by id.
    aid = ids["artifact_ids"][spec["artifacts"][0]["name"]]
    (a,) = store.get_artifacts_by_id([aid])
    a.properties["p_int"].int_value = 43
    a.custom_properties["c_new"].string_value = "added"
    store.put_artifacts([a])
    (b,) = store.get_artifacts_by_id([aid])
    expect_eq("updated p_int", value_json(b.properties["p_int"]), {"int": 43}, problems)
    expect_eq("added c_new", value_json(b.custom_properties["c_new"]), {"string": "added"}, problems)
    if b.last_update_time_since_epoch < a.last_update_time_since_epoch:
        problems.append("last_update_time_since_epoch went backwards")
    if problems:
        raise Mismatch("roundtrip failed:\n  " + "\n  ".join(problems))
    print(json.dumps(dict(ids, ok=True, suffix=sfx), sort_keys=True))


# Every value kind MLMD has, proto values included (which SEED lacks), and a path of mixed steps.
VALUES = {
    "artifact_type": {
        "name": "values.Blob",
        "version": "v2",
        "description": "every value kind",
        "external_id": "values-blob-type",
        "properties": {"p_proto": "PROTO", "p_struct": "STRUCT", "p_bool": "BOOLEAN", "p_double": "DOUBLE"},
        "base_type": "DATASET",
    },
    "context_type": {"name": "values.Group", "version": None, "description": None, "external_id": None, "properties": {}},
    "execution_type": {
        "name": "values.Step",
        "version": None,
        "description": None,
        "external_id": None,
        "properties": {"p_int": "INT"},
    },
    "artifacts": [
        {
            "name": "blob",
            "uri": "gs://values/blob",
            "state": "MARKED_FOR_DELETION",
            "external_id": None,
            "properties": {
                "p_proto": {"proto": {"type_url": "type.googleapis.com/google.protobuf.Duration", "value_b64": "CAUQBw=="}},
                "p_struct": {"struct": {"list": [1.5, "s", False, None], "empty": {}}},
                "p_bool": {"bool": False},
                "p_double": {"double": -2.5},
            },
            "custom_properties": {
                "c_proto": {"proto": {"type_url": "type.googleapis.com/x.Raw", "value_b64": "AAECA/8="}},
                "c_int": {"int": -2147483648},
                # No backslash: MLMD's PostgreSQL driver quotes such text wrongly (E'...' in '...').
                "c_string": {"string": "quote \" apostrophe ' newline \n tab \t \u00e9 \U0001f600"},
            },
        }
    ],
    "contexts": [{"name": "group", "external_id": "values-group", "properties": {}, "custom_properties": {}}],
    "executions": [
        {
            "name": "step",
            "last_known_state": "FAILED",
            "external_id": None,
            "properties": {"p_int": {"int": 2147483647}},
            "custom_properties": {},
        }
    ],
    "attributions": [("group", "blob")],
    "associations": [("group", "step")],
    "parent_contexts": [],
    "events": [
        {
            "artifact": "blob",
            "execution": "step",
            "type": "DECLARED_INPUT",
            "path": [{"key": "z"}, {"index": 2}, {"key": "a"}, {"index": 0}],
            "milliseconds_since_epoch": SEED_EVENT_MS + 2,
        }
    ],
}


def cmd_seed_values(store, args):
    """Write VALUES, check it reads back, print the ids as JSON."""
    ids = write_graph(store, VALUES)
    problems, _ = check_graph(store, VALUES)
    if problems:
        raise Mismatch("seed-values failed:\n  " + "\n  ".join(problems))
    print(json.dumps(ids, sort_keys=True))


def cmd_seed_registry(store, args):
    """Write a registered model, a version and its model artifact the way the MLMD-backed
    registry did: kf.* types, "<parent id>:<name>" names, ParentContext and Attribution links.
    Prints the ids as JSON."""
    S, I = pb.STRING, pb.INT
    rm_type = pb.ContextType(name="kf.RegisteredModel")
    for k in ("description", "owner", "state"):
        rm_type.properties[k] = S
    mv_type = pb.ContextType(name="kf.ModelVersion")
    for k in ("author", "description", "model_name", "state", "version"):
        mv_type.properties[k] = S
    ma_type = pb.ArtifactType(name="kf.ModelArtifact")
    for k in ("description", "model_format_name", "model_format_version", "storage_key", "storage_path", "service_account_name"):
        ma_type.properties[k] = S
    rm_type_id = store.put_context_type(rm_type, can_add_fields=True, can_omit_fields=True)
    mv_type_id = store.put_context_type(mv_type, can_add_fields=True, can_omit_fields=True)
    ma_type_id = store.put_artifact_type(ma_type, can_add_fields=True, can_omit_fields=True)

    rm = pb.Context(type_id=rm_type_id, name="legacy-model")
    rm.properties["owner"].string_value = "mlmd"
    rm.properties["state"].string_value = "LIVE"
    rm.custom_properties["team"].string_value = "vision"
    [rm_id] = store.put_contexts([rm])
    mv = pb.Context(type_id=mv_type_id, name=f"{rm_id}:v1")
    mv.properties["author"].string_value = "mlmd"
    mv.properties["state"].string_value = "LIVE"
    # MLMD rejects undeclared properties, so such versions know their model only by the link.
    mv.custom_properties["accuracy"].double_value = 0.5
    [mv_id] = store.put_contexts([mv])
    store.put_parent_contexts([pb.ParentContext(child_id=mv_id, parent_id=rm_id)])
    ma = pb.Artifact(type_id=ma_type_id, name=f"{mv_id}:legacy-model", uri="s3://legacy/model",
                                     state=pb.Artifact.LIVE)
    ma.properties["model_format_name"].string_value = "onnx"
    ma.properties["model_format_version"].string_value = "1"
    [ma_id] = store.put_artifacts([ma])
    store.put_attributions_and_associations(
        [pb.Attribution(context_id=mv_id, artifact_id=ma_id)], [])
    # An experiment run logged by an MLMD-based tool: linked to its experiment by ParentContext
    # only, without the experiment_id property upstream writes.
    ex_type = pb.ContextType(name="kf.Experiment")
    run_type = pb.ContextType(name="kf.ExperimentRun")
    for t in (ex_type, run_type):
        for k in ("description", "owner", "state"):
            t.properties[k] = S
    ex_type_id = store.put_context_type(ex_type, can_add_fields=True, can_omit_fields=True)
    run_type_id = store.put_context_type(run_type, can_add_fields=True, can_omit_fields=True)
    [ex_id] = store.put_contexts([pb.Context(type_id=ex_type_id, name="legacy-experiment")])
    run = pb.Context(type_id=run_type_id, name=f"{ex_id}:run-1")
    run.properties["owner"].string_value = "mlmd"
    [run_id] = store.put_contexts([run])
    store.put_parent_contexts([pb.ParentContext(child_id=run_id, parent_id=ex_id)])
    print(json.dumps({"registered_model": rm_id, "model_version": mv_id, "model_artifact": ma_id,
                      "experiment": ex_id, "experiment_run": run_id}))


def undecodable(o):
    """Text MLMD hands back as bytes (invalid UTF-8: MLMD's MySQL client reads text as latin1)."""
    if isinstance(o, bytes):
        return {"bytes_b64": base64.b64encode(o).decode()}
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def cmd_dump(store, args):
    print(json.dumps(dump_store(store), sort_keys=True, indent=None if args.compact else 1, default=undecodable))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, help="database URL (sqlite:///path, mysql://..., postgres://...)")
    ap.add_argument("--upgrade", action="store_true", help="enable_upgrade_migration=True")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("create").set_defaults(fn=cmd_create)
    sub.add_parser("seed").set_defaults(fn=cmd_seed)
    sub.add_parser("seed-registry").set_defaults(fn=cmd_seed_registry)
    sub.add_parser("seed-values").set_defaults(fn=cmd_seed_values)
    v = sub.add_parser("verify")
    v.add_argument("--strict", action="store_true", help="fail on any non-seed artifact/context/execution")
    v.set_defaults(fn=cmd_verify)
    r = sub.add_parser("roundtrip")
    r.add_argument("--suffix", help="name suffix (default: random)")
    r.set_defaults(fn=cmd_roundtrip)
    for name in ("dump", "dump-artifacts", "get"):
        d = sub.add_parser(name)
        d.add_argument("--compact", action="store_true", help="one line of JSON")
        d.set_defaults(fn=cmd_dump)
    args = ap.parse_args(argv)
    try:
        store = open_store(args)
        args.fn(store, args)
    except Mismatch as e:
        print(f"mlmd_oracle: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # MLMD raises RuntimeError / errors.* with the C++ status message
        print(f"mlmd_oracle: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
