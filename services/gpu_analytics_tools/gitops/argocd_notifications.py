"""The notifications settings of the argo-cd HelmChart (bootstrap/argo-cd/helmchart.yaml),
read as Argo CD's notifications controller reads them: each `service.*`, `template.*` and
`trigger.*` value is YAML of its own, which the controller parses only when it runs (one that
does not parse stops every notification). Checked offline, in `make validate`:

- every value parses, with the shape the controller expects (a service has a `url`, a template
  a body per webhook, a trigger a list of conditions with `when` and `send`);
- every trigger sends templates that exist, every subscription names triggers and services that
  exist, every template writes for services that exist;
- every `$key` a service reads is a key of the aws ExternalSecret argocd-notifications-secret.

The messages themselves (expressions and Go templates) are exercised by the notifications
controller of the cluster simulation (tests/cluster).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from gpu_analytics_tools.gitops.findings import Finding

HELMCHART = Path("bootstrap/argo-cd/helmchart.yaml")
EXTERNAL_SECRET = Path("clusters/aws/argocd-notifications/argocd-notifications-externalsecret.yaml")
SECRET_REF = re.compile(r"\$([\w-]+)")


def notifications_values(repo: Path) -> dict[str, Any]:
    doc = yaml.safe_load((repo / HELMCHART).read_text())
    values = yaml.safe_load(doc["spec"]["valuesContent"]) or {}
    return dict(values.get("notifications") or {})


def secret_keys(repo: Path) -> set[str]:
    doc = yaml.safe_load((repo / EXTERNAL_SECRET).read_text())
    return {item["secretKey"] for item in doc["spec"]["data"]}


def _parse(kind: str, key: str, text: Any, found: list[Finding]) -> Any:
    where = f"{HELMCHART} notifications.{kind}.{key}"
    if not isinstance(text, str):
        found.append(Finding("argocd-notifications", where, "not a string of YAML"))
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        found.append(Finding("argocd-notifications", where, f"does not parse: {exc}"))
        return None


def check(notifications: dict[str, Any], keys: set[str]) -> list[Finding]:
    """Findings for the `notifications` values of the chart; `keys`: the Secret's keys."""
    found: list[Finding] = []
    if not notifications.get("enabled", True):
        return found
    services: set[str] = set()
    for key, text in (notifications.get("notifiers") or {}).items():
        service = _parse("notifiers", key, text, found)
        services.add(key.rpartition(".")[2])
        where = f"{HELMCHART} notifications.notifiers.{key}"
        if service is not None and not (isinstance(service, dict) and service.get("url")):
            found.append(Finding("argocd-notifications", where, "no url"))
        for ref in SECRET_REF.findall(str(text)):
            if ref not in keys:
                found.append(
                    Finding("argocd-notifications", where, f"${ref} is no key of {EXTERNAL_SECRET}")
                )
    templates: set[str] = set()
    for key, text in (notifications.get("templates") or {}).items():
        template = _parse("templates", key, text, found)
        templates.add(key.removeprefix("template."))
        where = f"{HELMCHART} notifications.templates.{key}"
        for name, body in ((template or {}).get("webhook") or {}).items():
            if name not in services:
                found.append(Finding("argocd-notifications", where, f"no service {name}"))
            if not (isinstance(body, dict) and body.get("method") and body.get("body")):
                found.append(Finding("argocd-notifications", where, f"{name}: no method or body"))
    triggers: set[str] = set()
    for key, text in (notifications.get("triggers") or {}).items():
        conditions = _parse("triggers", key, text, found)
        triggers.add(key.removeprefix("trigger."))
        where = f"{HELMCHART} notifications.triggers.{key}"
        if conditions is None:
            continue
        if not isinstance(conditions, list) or not conditions:
            found.append(Finding("argocd-notifications", where, "not a list of conditions"))
            continue
        for condition in conditions:
            if not (isinstance(condition, dict) and condition.get("when")):
                found.append(Finding("argocd-notifications", where, "a condition without when"))
                continue
            for name in condition.get("send") or []:
                if name not in templates:
                    found.append(Finding("argocd-notifications", where, f"no template {name}"))
    for i, sub in enumerate(notifications.get("subscriptions") or []):
        where = f"{HELMCHART} notifications.subscriptions[{i}]"
        for name in sub.get("triggers") or []:
            if name not in triggers:
                found.append(Finding("argocd-notifications", where, f"no trigger {name}"))
        for recipient in sub.get("recipients") or []:
            if recipient.partition(":")[0] not in services:
                found.append(Finding("argocd-notifications", where, f"no service {recipient}"))
    return found


def check_repo(repo: Path) -> list[Finding]:
    return check(notifications_values(repo), secret_keys(repo))
