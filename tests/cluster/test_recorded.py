"""`gpu-analytics cluster status|wait` and the wave check on output recorded from the
simulation (testdata/: `argocd app list -o json` during and after an install, the
Applications and Argo CD's events of that install, trimmed to the fields read)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from gpu_analytics_tools.cluster import apps, waves

DATA = Path(__file__).parent / "testdata"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def test_app_list_during_the_install() -> None:
    listed = apps.parse((DATA / "app-list-syncing.json").read_text())
    by_name = {a.name: a for a in listed}
    assert [a.name for a in listed] == ["argo-cd", "namespaces", "root", "kafka", "mongodb"]
    # Argo CD reads kafka Healthy while its resources are still being created.
    assert (by_name["kafka"].sync, by_name["kafka"].health) == ("OutOfSync", "Healthy")
    assert not by_name["kafka"].done and not by_name["root"].done
    assert by_name["namespaces"].done and by_name["namespaces"].wave == -1
    table = apps.table(listed)
    assert table.splitlines()[0].split() == ["WAVE", "NAME", "SYNC", "HEALTH", "PROBLEM"]
    assert "   1  kafka" in table


def test_app_list_after_the_install() -> None:
    listed = apps.parse((DATA / "app-list-synced.json").read_text())
    assert len(listed) == 7 and all(a.done for a in listed)
    assert [a.wave for a in listed] == sorted(a.wave for a in listed)
    assert all(a.problem == "" for a in listed)


def test_first_failing_condition_is_the_problem() -> None:
    listed = load("app-list-synced.json")
    listed[0]["status"]["conditions"] = [
        {"type": "InvalidSpecError", "message": "destination not allowed"},
        {"type": "SyncError", "message": "later"},
    ]
    parsed = apps.parse(json.dumps(listed))
    assert next(a for a in parsed if a.name == listed[0]["metadata"]["name"]).problem == (
        "InvalidSpecError: destination not allowed"
    )


def test_recorded_install_kept_its_waves() -> None:
    recorded_apps, events = load("applications.json"), load("events.json")
    times = waves.app_times(recorded_apps, events)
    assert {t.name for t in times} >= {"namespaces", "kafka", "mongodb", "pipeline", "monitoring"}
    assert all(t.ready is not None for t in times if t.name != "root")
    assert waves.violations(recorded_apps, events) == []


def test_recorded_install_with_a_wave_started_early_is_caught() -> None:
    recorded_apps, events = load("applications.json"), load("events.json")
    ready = {t.name: t.ready for t in waves.app_times(recorded_apps, events)}
    kafka_ready = ready["kafka"]
    assert kafka_ready is not None
    for app in recorded_apps:
        if app["metadata"]["name"] == "pipeline":  # wave 2, created before kafka was ready
            early = kafka_ready - timedelta(seconds=5)
            app["metadata"]["creationTimestamp"] = early.strftime("%Y-%m-%dT%H:%M:%SZ")
    found = waves.violations(recorded_apps, events)
    assert any(f.startswith("pipeline (wave 2)") and "kafka (wave 1)" in f for f in found), found
