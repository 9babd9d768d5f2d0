"""The state of a cluster's Applications as the argocd CLI reports it (`argocd app list -o
json`), reduced to what a person waits for: sync status, health, wave and the first thing
that fails."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

from gpu_analytics_tools.tools import ToolMissingError, find

WAVE = "argocd.argoproj.io/sync-wave"


@dataclass(frozen=True)
class AppStatus:
    name: str
    sync: str
    health: str
    wave: int
    operation: str  # phase of the last or current sync: Running, Succeeded, Failed, ...
    problem: str  # the first failing condition or sync message, "" when none

    @property
    def done(self) -> bool:
        return self.sync == "Synced" and self.health == "Healthy" and self.operation != "Running"


def _problem(status: dict[str, Any]) -> str:
    for cond in status.get("conditions") or []:
        if str(cond.get("type", "")).endswith(("Error", "Warning")):
            return f"{cond.get('type')}: {cond.get('message', '')}".strip()
    op = status.get("operationState") or {}
    if op.get("phase") in {"Failed", "Error"} or (
        op.get("phase") == "Running" and op.get("message")
    ):
        return str(op.get("message", ""))
    health = status.get("health") or {}
    if health.get("status") not in {None, "Healthy"} and health.get("message"):
        return str(health["message"])
    return ""


def parse(payload: str) -> list[AppStatus]:
    """`argocd app list -o json` output (a JSON array of Applications) to AppStatus, in wave
    order, then by name."""
    apps: list[dict[str, Any]] = json.loads(payload or "[]") or []
    result = []
    for app in apps:
        meta = app.get("metadata") or {}
        status = app.get("status") or {}
        try:
            wave = int((meta.get("annotations") or {}).get(WAVE, "0"))
        except ValueError:
            wave = 0
        result.append(
            AppStatus(
                name=str(meta.get("name", "?")),
                sync=str((status.get("sync") or {}).get("status") or "Unknown"),
                health=str((status.get("health") or {}).get("status") or "Unknown"),
                wave=wave,
                operation=str((status.get("operationState") or {}).get("phase") or ""),
                problem=_problem(status),
            )
        )
    return sorted(result, key=lambda a: (a.wave, a.name))


def table(apps: list[AppStatus]) -> str:
    lines = [f"{'WAVE':>4}  {'NAME':28} {'SYNC':10} {'HEALTH':12} PROBLEM"]
    for a in apps:
        problem = a.problem.replace("\n", " ")
        if len(problem) > 100:
            problem = problem[:97] + "..."
        lines.append(f"{a.wave:>4}  {a.name:28} {a.sync:10} {a.health:12} {problem}")
    return "\n".join(lines)


class ArgocdError(RuntimeError):
    pass


def argocd_cli() -> str:
    try:
        return find("argocd", "ARGOCD") or "argocd"
    except ToolMissingError as exc:
        raise ArgocdError(str(exc)) from exc


def list_apps(timeout: float = 60.0) -> list[AppStatus]:
    """Every Application, through the argocd CLI: ARGOCD_SERVER / ARGOCD_OPTS select a
    server; without them, core mode (the kube context only, no login)."""
    cmd = [argocd_cli(), "app", "list", "-o", "json"]
    if not os.environ.get("ARGOCD_OPTS") and not os.environ.get("ARGOCD_SERVER"):
        cmd.append("--core")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise ArgocdError(f"{cmd[0]} not found: run make setup") from exc
    except subprocess.TimeoutExpired as exc:
        raise ArgocdError(f"argocd app list did not answer in {timeout:.0f}s") from exc
    if proc.returncode != 0:
        raise ArgocdError(f"argocd app list failed: {proc.stderr.strip()[-500:]}")
    return parse(proc.stdout)
