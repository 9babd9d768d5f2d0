"""`amtool check-config` on the Alertmanager configuration the cluster runs.

kube-prometheus-stack writes `alertmanager.config` of its values into the Secret Alertmanager
reads. Checked here: the configuration of values.yaml, the same with the opt-in Slack file
merged over it as Helm merges values files, and, where the chart step rendered the release,
the `alertmanager.yaml` of the rendered Secret itself. amtool is the cluster's release, built
by scripts/install-alertmanager.sh.
"""

from __future__ import annotations

import base64
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from gpu_analytics_tools.gitops.findings import Finding

VALUES = Path("monitoring/kube-prometheus-stack/values.yaml")
SLACK = Path("monitoring/kube-prometheus-stack/alertmanager-slack.yaml")


def helm_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Values files as Helm merges them: maps key by key, anything else (lists too) replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def alertmanager_config(repo: Path, *, slack: bool = False) -> dict[str, Any]:
    """The Alertmanager configuration of values.yaml, with the opt-in Slack file over it."""
    values = yaml.safe_load((repo / VALUES).read_text())
    if slack:
        values = helm_merge(values, yaml.safe_load((repo / SLACK).read_text()))
    return dict(values["alertmanager"]["config"])


def configurations(repo: Path) -> dict[str, dict[str, Any]]:
    """label -> Alertmanager configuration: values.yaml, and values.yaml with the Slack file."""
    return {
        str(VALUES): alertmanager_config(repo),
        f"{VALUES} + {SLACK.name}": alertmanager_config(repo, slack=True),
    }


def rendered_configurations(label: str, docs: list[dict[str, Any]]) -> dict[str, str]:
    """label -> the alertmanager.yaml of each rendered Secret that carries one."""
    found = {}
    for doc in docs:
        if doc.get("kind") != "Secret":
            continue
        name = f"{label} Secret/{doc.get('metadata', {}).get('name')}"
        if text := (doc.get("stringData") or {}).get("alertmanager.yaml"):
            found[name] = text
        elif encoded := (doc.get("data") or {}).get("alertmanager.yaml"):
            found[name] = base64.b64decode(encoded).decode()
    return found


def check_config(amtool: str, label: str, config: dict[str, Any] | str) -> Finding | None:
    """None when amtool accepts the configuration, else a finding with its complaint."""
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alertmanager.yaml"
        path.write_text(text)
        proc = subprocess.run(
            [amtool, "check-config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    if proc.returncode == 0:
        return None
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    return Finding("amtool", label, " ".join(lines[-3:]) or f"exit {proc.returncode}")
