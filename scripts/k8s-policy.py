#!/usr/bin/env python3
"""Checks rendered Kubernetes manifests (kustomize output) against the rules deploy/k8s promises, beyond what
the JSON schemas can say. Used by scripts/ops-check.sh; prints one line per violation and exits 1 if any.

  k8s-policy.py RENDERED.yaml...

Rules, for every pod template (Deployment, StatefulSet, Job, CronJob):
  * pod: runAsNonRoot, seccompProfile RuntimeDefault, no service-account token
  * every container: allowPrivilegeEscalation false, readOnlyRootFilesystem, capabilities drop ALL,
    CPU and memory requests and limits, an image with a tag or digest (never :latest)
  * secrets reach the app as files only: no env valueFrom.secretKeyRef, no envFrom secretRef
  * Deployments with more than one replica (or an HPA minimum above one) have a PodDisruptionBudget; the web
    Deployment has an HPA and no fixed replica count
  * the namespace enforces Pod Security "restricted"; a default-deny NetworkPolicy exists
"""
import sys

import yaml

WORKLOADS = {"Deployment", "StatefulSet", "Job", "CronJob"}


def pod_spec(obj):
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {}).get("spec", {})


def check(docs):
    problems = []
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)

    for obj in (o for k in WORKLOADS for o in kinds.get(k, [])):
        name = f'{obj["kind"]}/{obj["metadata"]["name"]}'
        pod = pod_spec(obj)
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problems.append(f"{name}: pod securityContext.runAsNonRoot is not true")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: pod seccompProfile is not RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: automountServiceAccountToken is not false")
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            cname = f'{name} container {c["name"]}'
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cname}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cname}: readOnlyRootFilesystem is not true")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{cname}: capabilities do not drop ALL")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        problems.append(f"{cname}: no {r} {part[:-1]}")
            image = c.get("image", "")
            last = image.rsplit("/", 1)[-1]
            if "@sha256:" not in image and (":" not in last or last.endswith(":latest")):
                problems.append(f"{cname}: image {image!r} has no version tag or digest")
            for e in c.get("env", []):
                if "secretKeyRef" in e.get("valueFrom", {}):
                    problems.append(f"{cname}: secret {e['name']} as an environment value (use a *_FILE)")
            for e in c.get("envFrom", []):
                if "secretRef" in e:
                    problems.append(f"{cname}: envFrom a Secret (secrets are files, read via *_FILE)")

    pdb_selectors = [p["spec"]["selector"].get("matchLabels", {}) for p in kinds.get("PodDisruptionBudget", [])]
    hpa_min = {h["spec"]["scaleTargetRef"]["name"]: h["spec"].get("minReplicas", 1)
               for h in kinds.get("HorizontalPodAutoscaler", [])}
    for dep in kinds.get("Deployment", []):
        labels = dep["spec"]["template"]["metadata"].get("labels", {})
        replicas = hpa_min.get(dep["metadata"]["name"], dep["spec"].get("replicas", 1))
        if dep["metadata"]["name"] in hpa_min and "replicas" in dep["spec"]:
            problems.append(f'Deployment/{dep["metadata"]["name"]}: sets replicas although an HPA scales it')
        covered = any(sel and all(labels.get(k) == v for k, v in sel.items()) for sel in pdb_selectors)
        if replicas > 1 and not covered:
            problems.append(f'Deployment/{dep["metadata"]["name"]}: {replicas} replicas and no PodDisruptionBudget')
    hpa_targets = {h["spec"]["scaleTargetRef"]["name"] for h in kinds.get("HorizontalPodAutoscaler", [])}
    for dep in kinds.get("Deployment", []):
        if dep["metadata"]["name"] == "vortex-web" and "vortex-web" not in hpa_targets:
            problems.append("Deployment/vortex-web: no HorizontalPodAutoscaler")

    if kinds.get("Deployment"):  # the application build (the migrate build has only a Job)
        if not any(
            n["spec"].get("podSelector") == {} and set(n["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not n["spec"].get("ingress") and not n["spec"].get("egress")
            for n in kinds.get("NetworkPolicy", [])
        ):
            problems.append("no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)")
        namespaces = kinds.get("Namespace", [])
        if not namespaces:
            problems.append("no Namespace object")
        for ns in namespaces:
            if ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") != "restricted":
                problems.append(f'Namespace/{ns["metadata"]["name"]}: Pod Security "restricted" is not enforced')
    return problems


def main(paths):
    failed = False
    for path in paths:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for p in check(docs):
            print(f"{path}: {p}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
