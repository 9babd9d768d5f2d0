"""Did the sync waves gate? From the Applications (their waves and creation times) and
Argo CD's events on them, check that no Application was created before every Application
of the earlier waves had finished its first sync and turned Healthy.

Argo CD records `Sync operation to <revision> succeeded` (reason OperationCompleted) and
`Updated health status: A -> B` (reason ResourceUpdated) on each Application. Event times have
whole seconds, and a health check can flap twice within one (`Healthy -> Degraded`, `Degraded
-> Healthy`): the order within a second comes from the event's name, which Argo CD writes as
`<application>.<creation time in Unix nanoseconds, hex>` (util/argo/audit_logger.go).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gpu_analytics_tools.cluster.apps import WAVE

Obj = dict[str, Any]
_HEALTH = re.compile(r"^Updated health status: (\w*) -> (\w+)")


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _event_time(event: Obj) -> datetime | None:
    return _time(
        event.get("firstTimestamp") or event.get("eventTime") or event.get("lastTimestamp")
    )


@dataclass(frozen=True)
class AppTimes:
    name: str
    wave: int
    created: datetime
    ready: datetime | None  # first sync succeeded and Healthy since; None: never


def _nanoseconds(event: Obj, app: str) -> int:
    """The creation time Argo CD writes into the event's name; 0 for other names."""
    suffix = str((event.get("metadata") or {}).get("name", "")).removeprefix(f"{app}.")
    return int(suffix, 16) if re.fullmatch(r"[0-9a-f]{1,16}", suffix) else 0


def app_times(apps: list[Obj], events: list[Obj]) -> list[AppTimes]:
    by_app: dict[str, list[tuple[datetime, int, str, str]]] = {}
    for ev in events:
        obj = ev.get("involvedObject") or {}
        when = _event_time(ev)
        if obj.get("kind") != "Application" or when is None:
            continue
        name = str(obj.get("name"))
        by_app.setdefault(name, []).append((
            when, _nanoseconds(ev, name), str(ev.get("reason", "")), str(ev.get("message", "")),
        ))  # fmt: skip
    result = []
    for app in apps:
        meta = app.get("metadata") or {}
        name = str(meta.get("name"))
        created = _time(meta.get("creationTimestamp"))
        if created is None:
            continue
        synced: datetime | None = None
        healthy = False
        ready: datetime | None = None
        # Stable: events of the same time keep the order they were listed in.
        history = sorted(by_app.get(name, []), key=lambda e: (e[0], e[1]))
        for when, _, reason, message in history:
            if reason == "OperationCompleted" and message.endswith("succeeded"):
                synced = synced or when
            if m := _HEALTH.match(message):
                healthy = m.group(2) == "Healthy"
            if synced is not None and healthy:
                ready = when
                break
        result.append(
            AppTimes(name, int((meta.get("annotations") or {}).get(WAVE, "0")), created, ready)
        )
    return sorted(result, key=lambda a: (a.wave, a.created))


def violations(apps: list[Obj], events: list[Obj], root: str = "root") -> list[str]:
    """One line per Application created before an earlier wave was done."""
    times = [t for t in app_times(apps, events) if t.name != root]
    found = []
    for app in times:
        earlier = [t for t in times if t.wave < app.wave]
        for prev in earlier:
            if prev.ready is None or prev.ready > app.created:
                when = prev.ready.isoformat() if prev.ready else "never"
                found.append(
                    f"{app.name} (wave {app.wave}) created {app.created.isoformat()} before "
                    f"{prev.name} (wave {prev.wave}) was synced and Healthy ({when})"
                )
    return found
