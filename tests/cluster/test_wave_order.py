"""gpu_analytics_tools.cluster.waves on event histories of the shape Argo CD records: a tree that
waits passes; a wave created before the previous one was Healthy, or before its sync
finished although it read Healthy (the race the Application health check closes), fails;
events of the same second are ordered by the time in their names."""

from __future__ import annotations

from typing import Any

from gpu_analytics_tools.cluster import waves


def app(name: str, wave: int, created: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "annotations": {"argocd.argoproj.io/sync-wave": str(wave)},
            "creationTimestamp": f"2026-12-01T10:{created}Z",
        }
    }


def event(name: str, at: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "involvedObject": {"kind": "Application", "name": name},
        "firstTimestamp": f"2026-12-01T10:{at}Z",
        "reason": reason,
        "message": message,
    }


def synced(name: str, at: str) -> dict[str, Any]:
    return event(name, at, "OperationCompleted", "Sync operation to 0123abc succeeded")


def health(name: str, at: str, old: str, new: str) -> dict[str, Any]:
    return event(name, at, "ResourceUpdated", f"Updated health status: {old} -> {new}")


APPS = [
    app("root", 0, "00:00"),
    app("namespaces", -1, "00:01"),
    app("kafka", 1, "00:20"),
    app("pipeline", 2, "00:40"),
]


def test_waves_that_wait_pass() -> None:
    events = [
        health("namespaces", "00:02", "", "Progressing"),
        synced("namespaces", "00:05"),
        health("namespaces", "00:06", "Progressing", "Healthy"),
        health("kafka", "00:21", "", "Healthy"),
        synced("kafka", "00:30"),
        synced("pipeline", "00:41"),
        health("pipeline", "00:42", "", "Healthy"),
    ]
    assert waves.violations(APPS, events) == []
    times = {t.name: t for t in waves.app_times(APPS, events)}
    assert times["namespaces"].ready is not None and times["namespaces"].ready.second == 6
    assert times["kafka"].ready is not None and times["kafka"].ready.second == 30


def test_a_wave_created_while_the_previous_one_still_syncs_fails() -> None:
    events = [
        synced("namespaces", "00:05"),
        health("namespaces", "00:06", "Progressing", "Healthy"),
        # kafka read Healthy at once (its Missing resources left out) and its sync took
        # until 00:45, but pipeline was created at 00:40.
        health("kafka", "00:21", "", "Healthy"),
        synced("kafka", "00:45"),
        synced("pipeline", "00:50"),
    ]
    found = waves.violations(APPS, events)
    assert (
        len(found) == 1
        and found[0].startswith("pipeline (wave 2) created")
        and "kafka (wave 1)" in found[0]
    )


def test_a_wave_that_never_turned_healthy_fails() -> None:
    events = [synced("namespaces", "00:05"), health("namespaces", "00:06", "", "Degraded")]
    found = waves.violations(APPS, events)
    assert {f.split()[0] for f in found} == {"kafka", "pipeline"}
    assert all("namespaces (wave -1)" in f or "kafka (wave 1)" in f for f in found)


def named(ev: dict[str, Any], nanoseconds: int) -> dict[str, Any]:
    """The event with the name Argo CD gives it: <application>.<Unix nanoseconds, hex>."""
    return {**ev, "metadata": {"name": f"{ev['involvedObject']['name']}.{nanoseconds:x}"}}


def test_a_health_flap_within_one_second_is_read_in_the_order_it_happened() -> None:
    base = 1_796_000_000_000_000_000
    flap = [
        named(health("kafka", "00:21", "", "Healthy"), base),
        named(health("kafka", "00:29", "Healthy", "Progressing"), base + 8_000_000_000),
        # One second, two transitions: sorted by their messages these would read Degraded.
        named(health("kafka", "00:30", "Progressing", "Degraded"), base + 9_100_000_000),
        named(health("kafka", "00:30", "Degraded", "Healthy"), base + 9_900_000_000),
        named(synced("kafka", "00:30"), base + 9_950_000_000),
    ]
    events = [
        synced("namespaces", "00:05"),
        health("namespaces", "00:06", "Progressing", "Healthy"),
        # listed out of order (by message within the second): the names tell the order
        *flap[:2], flap[3], flap[2], flap[4],
        synced("pipeline", "00:41"),
        health("pipeline", "00:42", "", "Healthy"),
    ]  # fmt: skip
    assert waves.violations(APPS, events) == []
    times = {t.name: t for t in waves.app_times(APPS, events)}
    assert times["kafka"].ready is not None and times["kafka"].ready.second == 30
    # The same events the other way round within that second: kafka ends Degraded.
    swapped = [*flap[:2], {**flap[3], "metadata": flap[2]["metadata"]},
               {**flap[2], "metadata": flap[3]["metadata"]}, flap[4]]  # fmt: skip
    found = waves.violations(APPS, [*events[:2], *swapped, *events[-2:]])
    assert {f.split()[0] for f in found} == {"pipeline"}
