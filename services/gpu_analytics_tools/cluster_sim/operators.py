"""Chart controllers the simulation runs itself. kwok stands in for the kubelet: a chart's
pods turn Running and Ready, but no container runs. Most chart workloads are then as good as
running, except a controller whose custom resources others wait for: kube-prometheus-stack's
Prometheus and Alertmanager stay Progressing in Argo CD until the Prometheus Operator has
created their StatefulSets and written their status. So once the chart's operator Deployment
exists, the simulation starts the real operator (built by `make setup` at the release
scripts/gotools/prometheus-operator/go.mod pins and explains) as a process, with the
arguments the chart gave that Deployment; it creates the StatefulSets (whose pods kwok
runs) and sets the status from them, as on a real cluster.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gpu_analytics_tools.cluster_sim.kube import Obj

OPERATOR_IMAGE = "prometheus-operator/prometheus-operator"
# The operator's web server serves its metrics and, on a cluster, the chart's admission
# webhook over TLS with a certificate from a Secret volume; here it serves plain HTTP on
# loopback (the API server cannot reach the webhook's Service anyway: see netns.py).
WEB_FLAGS = {
    "--web.enable-tls", "--web.cert-file", "--web.key-file", "--web.listen-address",
    "--web.tls-min-version", "--web.tls-cipher-suites", "--web.client-ca-file",
}  # fmt: skip


def repository(image: str) -> str:
    """The image without its digest and tag (a registry's :port is kept)."""
    name = image.split("@")[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


def chart_operator(deployments: Obj) -> tuple[str, list[str]] | None:
    """(namespace/name, args) of the first Deployment running the operator's image."""
    for dep in deployments.get("items", []):
        for container in dep["spec"]["template"]["spec"].get("containers", []):
            if repository(container.get("image", "")).endswith(OPERATOR_IMAGE):
                meta = dep["metadata"]
                return f"{meta['namespace']}/{meta['name']}", list(container.get("args", []))
    return None


def known_flags(help_text: str) -> set[str]:
    """The flags (as `--name`) a Go program's `-help` lists, one `  -name ...` line each."""
    return {f"--{name}" for name in re.findall(r"^  -([\w.-]+)", help_text, re.M)}


def binary_flags(binary: Path) -> set[str]:
    proc = subprocess.run(
        [str(binary), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    return known_flags(proc.stdout + proc.stderr)


def split_known(args: list[str], known: set[str]) -> tuple[list[str], list[str]]:
    """(kept, dropped): the arguments whose flag the binary knows, and the others. The
    chart's release can be newer than the operator built here (see its go.mod); a flag the
    binary does not know would stop it at start. A value given as its own argument goes
    with its flag. A binary whose help lists no flags at all is not second-guessed."""
    if not known:
        return list(args), []
    kept: list[str] = []
    dropped: list[str] = []
    target = kept
    for arg in args:
        if arg.startswith("-"):
            name = "--" + arg.lstrip("-").split("=", 1)[0]
            target = kept if name in known else dropped
        target.append(arg)
    return kept, dropped


def operator_argv(
    binary: Path, chart_args: list[str], api_url: str, ca: Path, cert: Path, key: Path, port: int
) -> list[str]:
    """The chart's arguments, with the API server given explicitly (no service account in
    a process) and the web server on loopback without TLS."""
    kept = [a for a in chart_args if a.split("=", 1)[0] not in WEB_FLAGS]
    return [
        str(binary), *kept, f"--apiserver={api_url}", f"--ca-file={ca}", f"--cert-file={cert}",
        f"--key-file={key}", f"--web.listen-address=127.0.0.1:{port}", "--log-format=json",
    ]  # fmt: skip
