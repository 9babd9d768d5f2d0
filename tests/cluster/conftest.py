"""The cluster simulation for tests/cluster: one per session (started on first use), with
the tree installed by clusters/local/install.sh, the script a person runs.

Needs root (a network namespace) and the tools of `make setup`. Without them the tests skip
and say why, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_analytics_tools.cluster_sim import cli as sim_cli
from gpu_analytics_tools.cluster_sim.layout import RECEIVER_PORT, RECEIVER_SOCKET, missing_tools
from gpu_analytics_tools.testing.cluster_sim import REPO, Installed, RunningSim
from gpu_analytics_tools.testing.webhooks import WebhookReceiver

INSTALL_TIMEOUT = int(os.environ.get("CLUSTER_TEST_INSTALL_TIMEOUT", "900"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A simulation starts, installs and converges in minutes: more than the suite's
    per-test limit, which the first test that needs it pays for. test_cluster_up runs last."""
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.timeout(INSTALL_TIMEOUT + 600))
    # test_cluster_up moves the installed tree to another revision: after every other test.
    items.sort(key=lambda item: Path(str(item.fspath)).name == "test_cluster_up.py")


def _unavailable() -> str | None:
    if missing := missing_tools():
        return f"cluster simulation tools missing ({', '.join(missing)}): run make setup"
    if os.geteuid() != 0:
        return "the cluster simulation needs root (a network namespace of its own)"
    return None


def require_sim() -> None:
    if (reason := _unavailable()) is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def cluster_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    require_sim()
    state_dir = tmp_path_factory.mktemp("cluster-sim")
    charts = os.environ.get("CHARTS_DIR")
    # The simulation runs detached; it stops by itself should this session die unannounced.
    sim = sim_cli.start(
        state_dir, source=REPO, charts_dir=Path(charts) if charts else None, owner_pid=os.getpid()
    )
    # Argo CD's notifications leave the simulation through its receiver port to this (after
    # the start, which empties the state directory).
    webhooks = WebhookReceiver(state_dir / RECEIVER_SOCKET).start()
    running = RunningSim(sim, state_dir, [], webhooks)
    try:
        yield running
    finally:
        webhooks.stop()
        left = sim_cli.stop(state_dir)
        assert not left, f"still running after the simulation stopped: {left}"


@pytest.fixture(scope="session")
def installed(cluster_sim: RunningSim) -> Installed:
    """clusters/local/install.sh, run from the served checkout as a person runs it, with the
    alert and notification webhooks pointing at the session's receiver."""
    started = time.monotonic()
    proc = cluster_sim.run(
        "clusters/local/install.sh", check=False, timeout=INSTALL_TIMEOUT + 120,
        INSTALL_TIMEOUT=str(INSTALL_TIMEOUT),
        ON_CALL_WEBHOOK_URL=f"http://127.0.0.1:{RECEIVER_PORT}/on-call",
        TEAM_WEBHOOK_URL=f"http://127.0.0.1:{RECEIVER_PORT}/team",
    )  # fmt: skip
    cluster_sim.sample_connections()
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"install.sh exited {proc.returncode}:\n{output[-6000:]}"
    return Installed(cluster_sim, output, time.monotonic() - started)
