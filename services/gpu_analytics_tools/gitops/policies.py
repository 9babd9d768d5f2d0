"""Our policies on the rendered resources: the workload baseline (pinned images, pod security,
probes, requests and limits), PDBs, HPA-owned replicas, PSA labels, a default-deny
NetworkPolicy per namespace, and the Application conventions (projects, automated sync,
retry, waves, finalizers, no CreateNamespace)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

from gpu_analytics_tools.gitops.chart_releases import dig
from gpu_analytics_tools.gitops.findings import Finding
from gpu_analytics_tools.gitops.tree import PINNED_VERSION, ClusterResult, Resource, ident

IN_CLUSTER = "https://kubernetes.default.svc"
FINALIZER = "resources-finalizer.argocd.argoproj.io"


PSA_LEVELS = {"privileged", "baseline", "restricted"}
# Namespaces the platform uses but does not own (K3s's), so declares no Namespace for.
FOREIGN_NAMESPACES = {"kube-system"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
RUN_TO_COMPLETION = {"Job", "CronJob"}
# Cluster-scoped kinds of the tree and of the charts it installs (Argo CD asks the API server;
# offline this list stands in for its discovery).
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "PriorityClass",
    "PersistentVolume",
    "RuntimeClass",
    "IngressClass",
    "APIService",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ClusterSecretStore",
    "ClusterExternalSecret",
    "ClusterGenerator",
}


def pod_spec(res: Resource) -> Resource | None:
    kind = res.get("kind")
    if kind == "Pod":
        return res.get("spec")
    if kind == "CronJob":
        spec: Resource | None = dig(res, "spec", "jobTemplate", "spec", "template", "spec")
        return spec
    if kind in WORKLOAD_KINDS:
        spec = dig(res, "spec", "template", "spec")
        return spec
    return None


def containers(spec: Resource) -> Iterator[tuple[str, Resource]]:
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            yield key, c


def image_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    return ":" in name and not name.endswith(":latest")


def check_workload(res: Resource, where: str) -> list[Finding]:
    """The workload baseline for one workload: pod security, resources, probes, pinned images."""
    spec = pod_spec(res)
    if spec is None:
        return [Finding("workload", where, "no pod template")]
    found: list[Finding] = []
    pod_sc = spec.get("securityContext") or {}
    for key, c in containers(spec):
        cname = f"{where} container {c.get('name')}"
        sc = c.get("securityContext") or {}
        image = str(c.get("image", ""))
        if not image_pinned(image):
            found.append(Finding("image-pinned", cname, f"image {image!r} has no pinned tag"))
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if non_root is not True or uid == 0:
            found.append(Finding("non-root", cname, "runAsNonRoot must be true (and UID != 0)"))
        if sc.get("readOnlyRootFilesystem") is not True:
            found.append(Finding("read-only-root", cname, "readOnlyRootFilesystem must be true"))
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(
                Finding("no-privilege-escalation", cname, "allowPrivilegeEscalation must be false")
            )
        if sc.get("privileged") is True:
            found.append(Finding("no-privilege-escalation", cname, "privileged container"))
        if "ALL" not in (dig(sc, "capabilities", "drop") or []):
            found.append(Finding("capabilities", cname, "capabilities.drop must include ALL"))
        seccomp = dig(sc, "seccompProfile", "type") or dig(pod_sc, "seccompProfile", "type")
        if seccomp != "RuntimeDefault":
            found.append(Finding("seccomp", cname, "seccompProfile.type must be RuntimeDefault"))
        resources = c.get("resources") or {}
        missing = [
            f"{kind}.{r}"
            for kind in ("requests", "limits")
            for r in ("cpu", "memory")
            if not dig(resources, kind, r)
        ]
        if missing:
            found.append(Finding("resources", cname, f"missing {', '.join(missing)}"))
        if key == "containers" and res.get("kind") not in RUN_TO_COMPLETION:
            for probe in ("livenessProbe", "readinessProbe"):
                if not c.get(probe):
                    found.append(Finding("probes", cname, f"no {probe}"))
    return found


def selector_matches(selector: Resource | None, labels: dict[str, str]) -> bool:
    """matchLabels/matchExpressions (In, NotIn, Exists, DoesNotExist) against labels."""
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and labels.get(key) in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def is_default_deny(policy: Resource) -> bool:
    spec = policy.get("spec") or {}
    selects_all = not (spec.get("podSelector") or {})
    types = spec.get("policyTypes") or ["Ingress"]
    return selects_all and "Ingress" in types and not spec.get("ingress")


def check_cluster_policies(result: ClusterResult) -> list[Finding]:
    found: list[Finding] = []
    cluster = result.name
    resources = [r for _, r in result.rendered]

    def of_kind(kind: str) -> list[Resource]:
        return [r for r in resources if r.get("kind") == kind]

    # Workloads, replicas, HPAs, PDBs.
    hpas = of_kind("HorizontalPodAutoscaler")
    pdbs = of_kind("PodDisruptionBudget")
    for res in resources:
        if res.get("kind") not in WORKLOAD_KINDS:
            continue
        where = f"[{cluster}] {ident(res)}"
        found += check_workload(res, where)
        ns = dig(res, "metadata", "namespace")
        name = dig(res, "metadata", "name")
        targeting = [
            h
            for h in hpas
            if dig(h, "metadata", "namespace") == ns
            and dig(h, "spec", "scaleTargetRef", "kind") == res.get("kind")
            and dig(h, "spec", "scaleTargetRef", "name") == name
        ]
        if targeting and dig(res, "spec", "replicas") is not None:
            found.append(
                Finding("hpa-replicas", where, "sets spec.replicas although an HPA owns it")
            )
        max_replicas = max(
            [int(dig(h, "spec", "maxReplicas") or 1) for h in targeting]
            + [int(dig(res, "spec", "replicas") or 1)]
        )
        if res.get("kind") in {"Deployment", "StatefulSet"} and max_replicas > 1:
            labels = dig(res, "spec", "template", "metadata", "labels") or {}
            if not any(
                dig(p, "metadata", "namespace") == ns
                and selector_matches(dig(p, "spec", "selector"), labels)
                for p in pdbs
            ):
                found.append(
                    Finding("pdb", where, f"up to {max_replicas} replicas but no PDB selects it")
                )

    # Namespaces: declared, PSA-labelled, default deny.
    namespaces = {dig(n, "metadata", "name"): n for n in of_kind("Namespace")}
    policies = of_kind("NetworkPolicy")
    for ns_name, ns in namespaces.items():
        where = f"[{cluster}] Namespace/{ns_name}"
        level = (dig(ns, "metadata", "labels") or {}).get("pod-security.kubernetes.io/enforce")
        if level not in PSA_LEVELS:
            found.append(
                Finding("psa-labels", where, "no pod-security.kubernetes.io/enforce label")
            )
        if not any(
            dig(p, "metadata", "namespace") == ns_name and is_default_deny(p) for p in policies
        ):
            found.append(Finding("default-deny", where, "no default-deny NetworkPolicy"))
    used = {
        (str(dig(r, "metadata", "namespace")), ident(r))
        for r in resources
        if dig(r, "metadata", "namespace")
    }
    used |= {
        (
            str(dig(a, "spec", "destination", "namespace")),
            f"Application/{dig(a, 'metadata', 'name')}",
        )
        for a in result.applications
        if dig(a, "spec", "destination", "namespace")
    }
    for ns_name, user in sorted(used):
        if ns_name not in namespaces and ns_name not in FOREIGN_NAMESPACES:
            found.append(
                Finding("namespace", f"[{cluster}] {user}", f"namespace {ns_name} is not declared")
            )

    found += check_applications(result, of_kind("AppProject"))
    found += check_helmcharts(of_kind("HelmChart"), cluster)
    return found


def check_helmcharts(charts: list[Resource], cluster: str) -> list[Finding]:
    return [
        Finding("chart-pinned", f"[{cluster}] {ident(c)}", f"version {dig(c, 'spec', 'version')!r}")
        for c in charts
        if not PINNED_VERSION.match(str(dig(c, "spec", "version") or ""))
    ]


def check_applications(result: ClusterResult, projects: list[Resource]) -> list[Finding]:
    """The Application conventions: projects, automated sync, retry, waves, finalizers, no
    CreateNamespace."""
    found: list[Finding] = []
    by_name = {dig(p, "metadata", "name"): p for p in projects}
    # The Application whose path holds Argo CD's own HelmChart must not carry the finalizer.
    argocd_paths = {
        path
        for path, r in result.rendered
        if r.get("kind") == "HelmChart" and dig(r, "spec", "chart") == "argo-cd"
    }
    for proj in projects:
        where = f"[{result.name}] AppProject/{dig(proj, 'metadata', 'name')}"
        spec = proj.get("spec") or {}
        if "*" in (spec.get("sourceRepos") or []):
            found.append(Finding("app-project", where, "sourceRepos allows '*'"))
        for dest in spec.get("destinations") or []:
            if "*" in (str(dest.get("namespace")), str(dest.get("server")), str(dest.get("name"))):
                found.append(Finding("app-project", where, f"destination {dest} has '*'"))
        if dig(proj, "metadata", "annotations", "argocd.argoproj.io/sync-wave") is None:
            found.append(Finding("sync-wave", where, "no argocd.argoproj.io/sync-wave"))
    for app in result.applications:
        name = dig(app, "metadata", "name")
        where = f"[{result.name}] Application/{name}"
        spec = app.get("spec") or {}
        project = spec.get("project")
        if project == "default" or project not in by_name:
            found.append(Finding("app-project", where, f"project {project!r} is not one of ours"))
        else:
            # Argo CD matches the destination namespace as it is, "" when unset, against the
            # project's destinations: an Application without one is an InvalidSpecError unless
            # the project allows every namespace (which ours never do).
            dest = spec.get("destination") or {}
            if not destination_permitted(
                by_name[project], dest.get("server"), dest.get("namespace")
            ):
                found.append(
                    Finding("app-project", where, f"destination not allowed by project {project}")
                )
            found += check_app_resources(result, app, by_name[project], where)
        if (spec.get("destination") or {}).get("server") != IN_CLUSTER:
            found.append(Finding("app", where, f"destination server must be {IN_CLUSTER}"))
        automated = dig(spec, "syncPolicy", "automated") or {}
        if automated.get("prune") is not True or automated.get("selfHeal") is not True:
            found.append(Finding("sync-policy", where, "automated sync needs prune and selfHeal"))
        if not dig(spec, "syncPolicy", "retry", "backoff"):
            found.append(Finding("sync-policy", where, "no retry with backoff"))
        options = dig(spec, "syncPolicy", "syncOptions") or []
        if "CreateNamespace=true" in options:
            found.append(
                Finding("sync-policy", where, "CreateNamespace=true: declare the Namespace")
            )
        is_root = dig(spec, "source", "path") == f"clusters/{result.name}"
        sources = spec.get("sources") or [spec.get("source") or {}]
        runs_argocd = any(s.get("path") in argocd_paths for s in sources)
        has_finalizer = FINALIZER in (dig(app, "metadata", "finalizers") or [])
        if is_root:
            continue
        if dig(app, "metadata", "annotations", "argocd.argoproj.io/sync-wave") is None:
            found.append(Finding("sync-wave", where, "no argocd.argoproj.io/sync-wave"))
        if runs_argocd and has_finalizer:
            found.append(Finding("finalizer", where, "the app running Argo CD has the finalizer"))
        if not runs_argocd and not has_finalizer:
            found.append(Finding("finalizer", where, f"no {FINALIZER}"))
    return found


def destination_permitted(project: Resource, server: Any, namespace: Any) -> bool:
    """Argo CD's rule: some destination of the project matches server and namespace (globs)."""
    return any(
        fnmatch.fnmatchcase(str(server or ""), str(d.get("server") or ""))
        and fnmatch.fnmatchcase(str(namespace or ""), str(d.get("namespace") or ""))
        for d in dig(project, "spec", "destinations") or []
    )


def kind_permitted(whitelist: list[Resource] | None, group: str, kind: str) -> bool:
    return any(
        fnmatch.fnmatchcase(group, str(w.get("group", "")))
        and fnmatch.fnmatchcase(kind, str(w.get("kind", "")))
        for w in whitelist or []
    )


def check_app_resources(
    result: ClusterResult, app: Resource, project: Resource, where: str
) -> list[Finding]:
    """What Argo CD checks before it applies a resource: its namespace is a destination of
    the project, its kind is whitelisted (cluster-scoped kinds must be listed; namespaced
    kinds only when the project has a namespaceResourceWhitelist)."""
    found: list[Finding] = []
    spec = app.get("spec") or {}
    dest = spec.get("destination") or {}
    paths = {s.get("path") for s in (spec.get("sources") or [spec.get("source") or {}])}
    paths.discard(None)
    proj_spec = project.get("spec") or {}
    for path, res in result.rendered:
        if path not in paths:
            continue
        group = str(res.get("apiVersion", "")).rpartition("/")[0]
        kind = str(res.get("kind", ""))
        if kind in CLUSTER_SCOPED_KINDS:
            if not kind_permitted(proj_spec.get("clusterResourceWhitelist"), group, kind):
                found.append(
                    Finding("app-project", where, f"{ident(res)}: cluster kind not permitted")
                )
            continue
        namespace = dig(res, "metadata", "namespace") or dest.get("namespace")
        if not destination_permitted(project, dest.get("server"), namespace):
            found.append(
                Finding(
                    "app-project", where, f"{ident(res)}: namespace {namespace!r} not permitted"
                )
            )
        whitelist = proj_spec.get("namespaceResourceWhitelist")
        if whitelist is not None and not kind_permitted(whitelist, group, kind):
            found.append(Finding("app-project", where, f"{ident(res)}: kind not permitted"))
    return found
