"""Assertions on the rendered manifests that schema validation cannot make.

    python check.py <overlay> <rendered.yaml> [<model-registry binary>]

The schemas say a manifest is well-formed; this says it deploys what we mean: the replica
count and storage each overlay promises, the hardening every container needs, probes on the
server's real paths, names that resolve (Service -> port, volume -> ConfigMap/PVC, env -> Secret)
and a config file whose keys are flags the binary has (when a binary is given).
"""

import base64
import re
import subprocess
import sys

import yaml

NAME = "model-registry"
LABEL = {"app.kubernetes.io/name": NAME}

failures = []


def check(cond, message):
    if not cond:
        failures.append(message)
    return cond


def main():
    overlay, rendered = sys.argv[1], sys.argv[2]
    binary = sys.argv[3] if len(sys.argv) > 3 else None
    with open(rendered, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
        check(d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == NAME,
              f"{d['kind']}/{d['metadata']['name']}: label app.kubernetes.io/name={NAME} missing")

    deployments = by_kind.get("Deployment", [])
    if not check(len(deployments) == 1, f"expected one Deployment, got {len(deployments)}"):
        return
    dep = deployments[0]
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    check(spec["selector"]["matchLabels"] == LABEL, f"selector is {spec['selector']}")
    check(spec["template"]["metadata"]["labels"].items() >= LABEL.items(), "pod template lacks the selector's labels")

    # Replicas and storage: one pod on a claim for SQLite, several on a shared database otherwise.
    pvcs = by_kind.get("PersistentVolumeClaim", [])
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    if overlay == "sqlite":
        check(spec.get("replicas") == 1, f"sqlite: replicas {spec.get('replicas')}, want 1")
        check(spec.get("strategy", {}).get("type") == "Recreate", "sqlite: strategy is not Recreate")
        check(len(pvcs) == 1, f"sqlite: {len(pvcs)} PVCs, want 1")
        claim = volumes.get("data", {}).get("persistentVolumeClaim", {}).get("claimName")
        check(pvcs and claim == pvcs[0]["metadata"]["name"], f"sqlite: volume data claims {claim!r}, not the PVC")
        check("emptyDir" not in volumes.get("data", {}), "sqlite: data volume is still an emptyDir")
    else:
        check(spec.get("replicas") == 3, f"{overlay}: replicas {spec.get('replicas')}, want 3")
        check(not pvcs, f"{overlay}: has a PVC")
        check(spec.get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable") == 0,
              f"{overlay}: a rollout may drop below full capacity")
        pdbs = by_kind.get("PodDisruptionBudget", [])
        check(len(pdbs) == 1 and pdbs[0]["spec"]["selector"]["matchLabels"] == LABEL, f"{overlay}: no PDB on the pods")

    # Hardening: every container non-root, read-only root, nothing to escalate with.
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod: runAsNonRoot is not true")
    check(psc.get("runAsUser", 0) != 0, "pod: runAsUser is 0")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod: seccomp is not RuntimeDefault")
    env_values = {e["name"]: e.get("value") for c in pod.get("containers", []) for e in c.get("env", [])}
    kubernetes_auth = env_values.get("MR_AUTH_MODE") == "kubernetes"
    # The token is mounted only for the server's own reviews (--auth-mode kubernetes).
    check(pod.get("automountServiceAccountToken") is kubernetes_auth,
          f"pod: service account token {'not ' if kubernetes_auth else ''}mounted with auth mode {env_values.get('MR_AUTH_MODE')}")
    check(kubernetes_auth, "the overlays check callers with --auth-mode kubernetes")
    if kubernetes_auth:
        check_kubernetes_auth(by_kind, pod, env_values)
    containers = pod.get("containers", []) + pod.get("initContainers", [])
    main_c = next((c for c in containers if c["name"] == NAME), None)
    if not check(main_c is not None, f"no container named {NAME}"):
        return
    for c in containers:
        sc, n = c.get("securityContext", {}), c["name"]
        check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{n}: may run as root")
        check(sc.get("readOnlyRootFilesystem") is True, f"{n}: root filesystem is writable")
        check(sc.get("allowPrivilegeEscalation") is False, f"{n}: privilege escalation allowed")
        check("ALL" in sc.get("capabilities", {}).get("drop", []), f"{n}: capabilities not dropped")
        check(not sc.get("capabilities", {}).get("add"), f"{n}: adds capabilities")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            check({"cpu", "memory"} <= set(res.get(kind, {})), f"{n}: {kind} lack cpu or memory")
        for m in c.get("volumeMounts", []):
            check(m["name"] in volumes, f"{n}: mount {m['mountPath']} names no volume ({m['name']})")

    # Probes on the server's paths and its named port; the Service reaches that port.
    ports = {p["name"]: p["containerPort"] for p in main_c.get("ports", [])}
    check(ports.get("http") == 8080, f"container port http is {ports.get('http')}, want 8080")
    ready = main_c.get("readinessProbe", {}).get("httpGet", {})
    check(ready.get("path") == "/readyz/health", f"readiness path {ready.get('path')!r}")
    check(ready.get("port") in ("http", 8080), f"readiness port {ready.get('port')!r}")
    live = main_c.get("livenessProbe", {}).get("httpGet", {})
    check(live.get("path", "").startswith("/"), "no HTTP liveness probe")
    check("readyz" not in live.get("path", ""), "liveness must not depend on the database (readyz)")
    services = by_kind.get("Service", [])
    check(len(services) == 1, f"expected one Service, got {len(services)}")
    for s in services:
        check(s["spec"]["selector"] == LABEL, f"Service selector {s['spec']['selector']}")
        sp = s["spec"]["ports"]
        check(any(p["port"] == 8080 and p.get("targetPort") in ("http", 8080) for p in sp), f"Service ports {sp}")

    # Writable places: the root is read-only, so the SQLite directory and /tmp must be volumes.
    mounts = {m["mountPath"]: m for m in main_c.get("volumeMounts", [])}
    workdir = main_c.get("workingDir", "/")
    for path in (workdir, "/tmp"):
        check(path in mounts and not mounts[path].get("readOnly"), f"{path} is not a writable volume")

    # The config file: mounted from the generated ConfigMap at the path given to --config.
    args = main_c.get("args", [])
    check(args[:1] == ["proxy"], f"args {args} do not run the server")
    config_path = args[args.index("--config") + 1] if "--config" in args else None
    check(config_path is not None, "no --config in args")
    config = None
    cms = {cm["metadata"]["name"]: cm for cm in by_kind.get("ConfigMap", [])}
    for path, m in mounts.items():
        vol = volumes.get(m["name"], {})
        if config_path and config_path.startswith(path.rstrip("/") + "/") and "configMap" in vol:
            cm = cms.get(vol["configMap"]["name"])
            if check(cm is not None, f"ConfigMap {vol['configMap']['name']} is not rendered"):
                config = yaml.safe_load(cm["data"][config_path[len(path.rstrip('/')) + 1:]])
    if check(isinstance(config, dict), f"{config_path} is not a YAML mapping from a ConfigMap"):
        want_type = overlay
        check(config.get("embedmd-database-type") == want_type,
              f"config embedmd-database-type {config.get('embedmd-database-type')!r}, want {want_type!r}")
        check(config.get("hostname") == "0.0.0.0" and int(config.get("port", 0)) == 8080, "config does not listen on 0.0.0.0:8080")
        check(not any("password" in k for k in config), "a password in the ConfigMap")
        if overlay == "sqlite":
            dsn = str(config.get("embedmd-database-dsn", "model-registry.db"))
            full = dsn if dsn.startswith("/") else f"{workdir}/{dsn}"
            check(full.startswith("/data/") and mounts.get("/data", {}).get("name") == "data", f"sqlite file {full} is not on the data volume")
        else:
            check("embedmd-database-dsn" not in config, f"{overlay}: a DSN in the ConfigMap")
        if binary:
            help_text = subprocess.run([binary, "proxy", "--help"], check=True, capture_output=True, text=True).stdout
            flags = set(re.findall(r"--([a-z][a-z0-9-]*)", help_text))
            unknown = sorted(set(config) - flags)
            check(not unknown, f"config keys that are no flag of {binary}: {unknown}")

    # The DSN: from a Secret through the environment; required and well-formed when replicated.
    env = {e["name"]: e for e in main_c.get("env", [])}
    ref = env.get("MR_EMBEDMD_DATABASE_DSN", {}).get("valueFrom", {}).get("secretKeyRef")
    if check(ref is not None, "MR_EMBEDMD_DATABASE_DSN is not from a Secret"):
        secrets = {s["metadata"]["name"]: s for s in by_kind.get("Secret", [])}
        if overlay == "sqlite":
            check(ref.get("optional") is True or ref["name"] in secrets, "sqlite: a required Secret that is not rendered")
        else:
            check(ref.get("optional") is False, f"{overlay}: the DSN Secret is optional")
            secret = secrets.get(ref["name"])
            if check(secret is not None, f"{overlay}: Secret {ref['name']} is not rendered"):
                raw = secret.get("data", {}).get(ref["key"])
                dsn = base64.b64decode(raw).decode() if raw else secret.get("stringData", {}).get(ref["key"], "")
                form = r"postgres(ql)?://[^/]+/\w+" if overlay == "postgres" else r"[^:@/]+:[^@]*@tcp\([^)]+:\d+\)/\w+"
                check(re.match(form, dsn), f"{overlay}: DSN {dsn!r} is not of the form {form}")


def rules_of(obj):
    return {(g, r, v, tuple(rule.get("resourceNames", [])))
            for rule in obj.get("rules", []) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def check_kubernetes_auth(by_kind, pod, env_values):
    """The RBAC of --auth-mode kubernetes: the pod's ServiceAccount may create the two reviews,
    and the Roles a cluster admin binds to callers grant the verbs the server asks about on the
    Service it names."""
    account = pod.get("serviceAccountName")
    accounts = {a["metadata"]["name"] for a in by_kind.get("ServiceAccount", [])}
    check(account in accounts, f"pod runs as ServiceAccount {account!r}, which is not rendered")
    roles = {r["metadata"]["name"]: r for r in by_kind.get("ClusterRole", [])}
    bound = [b for b in by_kind.get("ClusterRoleBinding", [])
             if any(s.get("kind") == "ServiceAccount" and s.get("name") == account for s in b.get("subjects", []))]
    granted = set()
    for b in bound:
        granted |= rules_of(roles.get(b["roleRef"]["name"], {}))
    for group, resource in (("authentication.k8s.io", "tokenreviews"), ("authorization.k8s.io", "subjectaccessreviews")):
        check((group, resource, "create", ()) in granted, f"the ServiceAccount may not create {resource}")
    service = env_values.get("MR_AUTH_KUBERNETES_RESOURCE_NAME")
    services = {s["metadata"]["name"] for s in by_kind.get("Service", [])}
    check(service in services, f"MR_AUTH_KUBERNETES_RESOURCE_NAME {service!r} is not the registry's Service {services}")
    namespaced = {r["metadata"]["name"]: rules_of(r) for r in by_kind.get("Role", [])}
    want = {f"registry-user-{service}": {"get"}, f"registry-admin-{service}": {"get", "create", "update", "delete"}}
    for name, verbs in want.items():
        rules = namespaced.get(name)
        if check(rules is not None, f"Role {name} is not rendered"):
            have = {v for (g, r, v, names) in rules if g == "" and r == "services" and names == (service,)}
            check(have == verbs, f"Role {name} grants {sorted(have)} on services/{service}, want {sorted(verbs)}")


if __name__ == "__main__":
    main()
    for f in failures:
        print(f"check.py [{sys.argv[1]}]: FAIL {f}", file=sys.stderr)
    print(f"check.py [{sys.argv[1]}]: {'FAILED' if failures else 'ok'} ({len(failures)} failures)")
    sys.exit(1 if failures else 0)
