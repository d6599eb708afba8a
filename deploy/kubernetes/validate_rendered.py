#!/usr/bin/env python3
"""Validate rendered Kubernetes manifests (the output of `kubectl kustomize`).

Usage: validate_rendered.py RENDERED.yaml [--config-out FILE]

* Built-in kinds are validated strictly (unknown fields rejected) against the
  Kubernetes OpenAPI schemas bundled with `kubernetes-validate`.
* prometheus-operator kinds (ServiceMonitor, PodMonitor, PrometheusRule),
  which kubernetes-validate has no schema for, are validated against the
  models generated from prometheus-operator's CRD schemas
  (`cloudcoil-models-prometheus-operator`): types, enums and patterns; those
  models ignore unknown fields, so every input key is also checked to survive
  a round trip through the model (a typo such as `intervall` fails).
* Policy the project promises for every workload: non-root numeric user,
  read-only root filesystem, no privilege escalation, all capabilities
  dropped, RuntimeDefault seccomp, requests and limits, the exporter's
  probes, port and config path; monitors point at a port that exists. A
  StatefulSet of shards sets UPSTREAM_EXPORTER_SHARD_COUNT to its replicas
  and takes UPSTREAM_EXPORTER_SHARD_INDEX from the pod's index.
* --config-out writes the exporter.yaml carried by the rendered ConfigMap, so
  CI can run `upstream-exporter --config.check` on exactly what a pod mounts.

Exits 1 listing every problem.
"""

import argparse
import sys

import kubernetes_validate
import yaml
from cloudcoil.models.prometheus_operator import v1 as promop

CRD_MODELS = {
    "ServiceMonitor": promop.ServiceMonitor,
    "PodMonitor": promop.PodMonitor,
    "PrometheusRule": promop.PrometheusRule,
}
EXPORTER_IMAGE = "ghcr.io/upstream-exporter/upstream-exporter:"

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def unknown_keys(given, kept, path=""):
    """Keys of `given` that did not survive the model round trip."""
    out = []
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [path or "."]
        for key, value in given.items():
            if key not in kept:
                out.append(f"{path}.{key}")
            else:
                out.extend(unknown_keys(value, kept[key], f"{path}.{key}"))
    elif isinstance(given, list):
        if not isinstance(kept, list) or len(kept) != len(given):
            return [path]
        for i, (g, k) in enumerate(zip(given, kept)):
            out.extend(unknown_keys(g, k, f"{path}[{i}]"))
    return out


def validate_schema(doc, where):
    kind = doc.get("kind")
    if kind in CRD_MODELS:
        try:
            model = CRD_MODELS[kind].model_validate(doc)
        except Exception as e:  # pydantic.ValidationError
            problem(where, f"does not match the {kind} CRD schema: {e}")
            return
        kept = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
        for key in unknown_keys(doc, kept):
            problem(where, f"unknown field {key} (not in the {kind} CRD schema)")
        return
    try:
        version = kubernetes_validate.validate(doc, kubernetes_validate.utils.latest_version(), strict=True)
        print(f"  ok  {where} (Kubernetes {version} schema, strict)")
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        problem(where, f"schema: {path}: {e.message}")
    except kubernetes_validate.SchemaNotFoundError as e:
        problem(where, f"no schema to validate against: {e.message}")
    else:
        return


def check_container(c, where, exporter):
    sc = c.get("securityContext", {})
    if sc.get("allowPrivilegeEscalation") is not False:
        problem(where, "allowPrivilegeEscalation must be false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problem(where, "readOnlyRootFilesystem must be true")
    if sc.get("runAsNonRoot") is not True:
        problem(where, "runAsNonRoot must be true")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        problem(where, "capabilities must drop ALL")
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in res.get(part, {}):
                problem(where, f"resources.{part}.{r} missing")
    if c.get("livenessProbe") is None:
        problem(where, "no livenessProbe")
    if not exporter:
        return
    if sc.get("runAsUser") != 65532:
        problem(where, "exporter must run as uid 65532")
    if c["livenessProbe"].get("httpGet", {}).get("path") != "/-/healthy":
        problem(where, "liveness must probe /-/healthy")
    if "--config.file=/etc/upstream-exporter/exporter.yaml" not in c.get("args", []):
        problem(where, "args must set --config.file=/etc/upstream-exporter/exporter.yaml")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    if ports.get("http-metrics") != 10138:
        problem(where, "port http-metrics must be 10138")
    mounts = {m.get("mountPath"): m for m in c.get("volumeMounts", [])}
    if not mounts.get("/etc/upstream-exporter", {}).get("readOnly"):
        problem(where, "config must be mounted read-only at /etc/upstream-exporter")


def check_shards(sts, c, where, services):
    """A StatefulSet of shards: count = replicas, index = the pod's index."""
    env = {e.get("name"): e for e in c.get("env", [])}
    count = env.get("UPSTREAM_EXPORTER_SHARD_COUNT", {}).get("value")
    if count != str(sts["spec"].get("replicas", 1)):
        problem(where, f"UPSTREAM_EXPORTER_SHARD_COUNT {count!r} must equal spec.replicas {sts['spec'].get('replicas', 1)}")
    index = env.get("UPSTREAM_EXPORTER_SHARD_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if index not in ("metadata.labels['apps.kubernetes.io/pod-index']", "metadata.name"):
        problem(where, "UPSTREAM_EXPORTER_SHARD_INDEX must come from the pod-index label or the pod name (downward API)")
    governing = [s for s in services if s["metadata"]["name"] == sts["spec"].get("serviceName")]
    if not governing or governing[0]["spec"].get("clusterIP") != "None":
        problem(where, f"serviceName {sts['spec'].get('serviceName')!r} must name a headless Service")


def check_policy(docs):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    pod_ports = set()
    exporters = 0
    for d in by_kind.get("Deployment", []) + by_kind.get("StatefulSet", []):
        name = f"{d['kind']}/{d['metadata']['name']}"
        spec = d["spec"]["template"]["spec"]
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problem(name, "pod securityContext.runAsNonRoot must be true")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problem(name, "pod seccompProfile must be RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            problem(name, "automountServiceAccountToken must be false")
        for c in spec["containers"]:
            exporter = c["image"].startswith(EXPORTER_IMAGE)
            exporters += exporter
            check_container(c, f"{name} container {c['name']}", exporter)
            for p in c.get("ports", []):
                pod_ports.add(p.get("name"))
        if d["metadata"]["name"] == "upstream-exporter":
            c = spec["containers"][0]
            if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/-/ready":
                problem(name, "readiness must probe /-/ready")
            if d["kind"] == "StatefulSet":
                check_shards(d, c, name, by_kind.get("Service", []))
    if exporters != 1:
        problem("rendered", f"expected exactly one exporter container, found {exporters}")
    service_ports = {p.get("name") for s in by_kind.get("Service", []) for p in s["spec"]["ports"]}
    for sm in by_kind.get("ServiceMonitor", []):
        for e in sm["spec"]["endpoints"]:
            if e.get("port") not in service_ports:
                problem(f"ServiceMonitor/{sm['metadata']['name']}", f"port {e.get('port')} is on no Service")
    for pm in by_kind.get("PodMonitor", []):
        for e in pm["spec"]["podMetricsEndpoints"]:
            if e.get("port") not in pod_ports:
                problem(f"PodMonitor/{pm['metadata']['name']}", f"port {e.get('port')} is on no container")
            job = [r for r in e.get("relabelings", []) if r.get("targetLabel") == "job"]
            if not job or job[0].get("replacement") != "upstream-exporter":
                problem(f"PodMonitor/{pm['metadata']['name']}", 'must set job="upstream-exporter"')
    if not (by_kind.get("ServiceMonitor") or by_kind.get("PodMonitor")):
        problem("rendered", "no ServiceMonitor or PodMonitor")
    if not by_kind.get("PrometheusRule"):
        problem("rendered", "no PrometheusRule")
    maps = [m for m in by_kind.get("ConfigMap", []) if "exporter.yaml" in m.get("data", {})]
    if len(maps) != 1:
        problem("rendered", "expected one ConfigMap carrying exporter.yaml")
        return None
    return maps[0]["data"]["exporter.yaml"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rendered")
    parser.add_argument("--config-out")
    args = parser.parse_args()
    with open(args.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if not docs:
        problem(args.rendered, "nothing rendered")
    for d in docs:
        where = f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"
        validate_schema(d, where)
        if d.get("kind") in CRD_MODELS and not any(p.startswith(where + ":") for p in problems):
            print(f"  ok  {where} (prometheus-operator CRD schema, unknown fields rejected)")
    config = check_policy(docs) if docs else None
    if config is not None and args.config_out:
        with open(args.config_out, "w") as f:
            f.write(config)
    if problems:
        print(f"{args.rendered}: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        sys.exit(1)
    print(f"{args.rendered}: {len(docs)} objects valid")


if __name__ == "__main__":
    main()
