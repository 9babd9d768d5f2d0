"""The install procedure of clusters/README.md (clusters/local/install.sh) against the
simulation: a real Argo CD syncs the tree from git into a real API server, and every
Application ends Synced and Healthy, wave after wave."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from gpu_analytics_tools.cluster import apps as argocd_apps
from gpu_analytics_tools.cluster import waves
from gpu_analytics_tools.cluster_sim import cli as sim_cli
from gpu_analytics_tools.cluster_sim import netns
from gpu_analytics_tools.testing.cluster_sim import Installed, report


def app_list(installed: Installed) -> list[argocd_apps.AppStatus]:
    out = installed.sim.run(str(installed.sim.env()["ARGOCD"]), "app", "list", "-o", "json").stdout
    return argocd_apps.parse(out)


def test_install_converges_with_every_application_synced_and_healthy(installed: Installed) -> None:
    apps = app_list(installed)
    report(argocd_apps.table(apps))
    report(f"install.sh took {installed.seconds:.0f}s")
    names = {a.name for a in apps}
    assert {"root", "namespaces", "argo-cd", "kafka", "mongodb", "pipeline", "monitoring"} <= names
    assert [a for a in apps if not a.done] == []
    assert "[4/4] waiting until every Application is Synced and Healthy" in installed.output


def test_waves_started_only_after_the_previous_wave_was_healthy(installed: Installed) -> None:
    apps = installed.sim.get_json("applications.argoproj.io", "-n", "argocd")["items"]
    events = installed.sim.get_json("events", "-n", "argocd")["items"]
    times = waves.app_times(apps, events)
    report(
        "\n".join(
            f"wave {t.wave:>2} {t.name:24} created {t.created:%H:%M:%S} "
            f"ready {t.ready.strftime('%H:%M:%S') if t.ready else 'never'}"
            for t in times
        )
    )
    assert len({t.wave for t in times}) >= 4, "the waves of the tree did not all run"
    assert waves.violations(apps, events) == []


def pod_refs(pod: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every Secret and ConfigMap a pod needs to start."""
    spec = pod["spec"]
    refs: set[tuple[str, str]] = set()
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        for env in c.get("env", []):
            src = env.get("valueFrom") or {}
            if "secretKeyRef" in src and not src["secretKeyRef"].get("optional"):
                refs.add(("secret", src["secretKeyRef"]["name"]))
            if "configMapKeyRef" in src and not src["configMapKeyRef"].get("optional"):
                refs.add(("configmap", src["configMapKeyRef"]["name"]))
        for env_from in c.get("envFrom", []):
            for key, kind in (("secretRef", "secret"), ("configMapRef", "configmap")):
                if key in env_from and not env_from[key].get("optional"):
                    refs.add((kind, env_from[key]["name"]))
    for vol in spec.get("volumes", []):
        if "secret" in vol and not vol["secret"].get("optional"):
            refs.add(("secret", vol["secret"]["secretName"]))
        if "configMap" in vol and not vol["configMap"].get("optional"):
            refs.add(("configmap", vol["configMap"]["name"]))
    return refs


# Secrets a chart's own hook Job writes at install time. kwok completes the Job without
# running it (and Argo CD deletes it once it succeeded), so nothing writes them here.
WRITTEN_BY_HOOK_JOBS = {
    ("secret", "kube-prometheus-stack", "kube-prometheus-stack-admission"): (
        "kube-prometheus-stack's admission-create Job (kube-webhook-certgen create "
        "--secret-name=kube-prometheus-stack-admission), a PreSync hook"
    ),
}


def missing_pod_refs(installed: Installed) -> list[str]:
    """What a kubelet would report as CreateContainerConfigError (kwok's fake kubelets start
    every pod regardless, so the test checks it)."""
    pods = installed.sim.get_json("pods", "-A")["items"]
    have = {
        (kind, o["metadata"]["namespace"], o["metadata"]["name"])
        for kind in ("secret", "configmap")
        for o in installed.sim.get_json(kind + "s", "-A")["items"]
    }
    missing = []
    for pod in pods:
        ns = pod["metadata"]["namespace"]
        for kind, name in sorted(pod_refs(pod)):
            if (kind, ns, name) not in have and (kind, ns, name) not in WRITTEN_BY_HOOK_JOBS:
                missing.append(f"pod {ns}/{pod['metadata']['name']} needs {kind} {name}")
    return missing


def test_every_secret_and_configmap_a_pod_needs_exists(installed: Installed) -> None:
    pods = installed.sim.get_json("pods", "-A")["items"]
    assert len(pods) >= 4, "no workloads were started"
    assert missing_pod_refs(installed) == []


def test_a_secret_nobody_creates_is_found(installed: Installed) -> None:
    sim = installed.sim
    sim.kubectl("-n", "pipeline", "get", "secret", "processor-mongodb")
    saved = sim.kubectl("-n", "pipeline", "get", "secret", "processor-mongodb", "-o", "json").stdout
    sim.kubectl("-n", "pipeline", "delete", "secret", "processor-mongodb")
    try:
        assert any("needs secret processor-mongodb" in m for m in missing_pod_refs(installed))
    finally:
        obj = json.loads(saved)
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
            obj["metadata"].pop(key, None)
        sim.kubectl("create", "-f", "-", stdin=json.dumps(obj))
    assert missing_pod_refs(installed) == []


def test_install_again_changes_nothing(installed: Installed) -> None:
    proc = installed.sim.run(
        "clusters/local/install.sh", check=False, timeout=600, INSTALL_TIMEOUT="300",
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "[1/4] Argo CD is installed" in out
    assert re.findall(r"secret \S+ exists, kept", out), out
    assert "created" not in re.sub(
        r"(?m)^.*unchanged$", "", out.split("[3/4]")[0].split("[2/4]")[1]
    )


def test_nothing_left_loopback(installed: Installed) -> None:
    sim = installed.sim
    state = sim_cli.running(sim.state_dir)
    assert state is not None and state.supervisor is not None
    pid = state.supervisor.pid
    # The simulation's namespace has loopback only: no route leads anywhere else.
    links = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", "ip", "-o", "link"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert [line.split(":")[1].strip() for line in links] == ["lo"]
    assert netns.netns_inode(pid) != netns.netns_inode()
    sim.sample_connections()
    addresses = set().union(*sim.loopback_samples)
    assert addresses, "no connections sampled"
    assert {
        a for a in addresses if not (a.startswith("127.") or a in {"::1", "0.0.0.0", "::"})
    } == set()
