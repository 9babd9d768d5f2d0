"""The Alertmanager configuration of monitoring/kube-prometheus-stack/values.yaml on a real
Alertmanager (the cluster's release, built by make setup): alerts posted to its API reach a
local webhook receiver with the routing, grouping and inhibition the configuration promises.
The receivers' URL files, which the Secret alertmanager-receivers holds in the cluster, point at
that receiver here."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gpu_analytics_tools.stack.process import free_port, spawn, stop_child
from gpu_analytics_tools.tools import find

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "monitoring" / "kube-prometheus-stack" / "values.yaml"
SECRET_DIR = "/etc/alertmanager/secrets/alertmanager-receivers/"


def config() -> dict[str, Any]:
    return dict(yaml.safe_load(VALUES.read_text())["alertmanager"]["config"])


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint that keeps what it was sent: (path, payload) each."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    binary = find("alertmanager", path=False)
    if binary is None:
        pytest.skip("alertmanager not built: run make setup")
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    text = yaml.safe_dump(config())
    for key in ("on-call", "team"):  # the Secret's keys, as files
        url_file = tmp_path / f"{key}-webhook-url"
        url_file.write_text(f"http://127.0.0.1:{receiver.server_port}/{key}")
        text = text.replace(f"{SECRET_DIR}{key}-webhook-url", str(url_file))
    # Seconds, not minutes: the grouping is what is tested, not its timing.
    cfg = yaml.safe_load(text)
    cfg["route"].update(group_wait="1s", group_interval="1s")
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(cfg))
    port, cluster_port = free_port(), free_port()
    proc = spawn(
        [binary, f"--config.file={tmp_path / 'alertmanager.yml'}",
         f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         f"--cluster.listen-address=127.0.0.1:{cluster_port}"],
        tmp_path / "alertmanager.log", cwd=tmp_path,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield url, receiver
    finally:
        stop_child(proc, 10)
        receiver.shutdown()


def post(url: str, *alerts: dict[str, str]) -> None:
    now = datetime.now(UTC).isoformat()
    body = [{"labels": labels, "startsAt": now} for labels in alerts]
    assert httpx.post(f"{url}/api/v2/alerts", json=body, timeout=5).status_code == 200


def wait_for(receiver: Receiver, count: int, seconds: float = 15) -> list[tuple[str, Any]]:
    deadline = time.monotonic() + seconds
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # and nothing more arrives
    return receiver.received


def test_the_configuration_passes_amtool_check_config(tmp_path: Path) -> None:
    amtool = find("amtool", path=False)
    if amtool is None:
        pytest.skip("amtool not built: run make setup")
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config()))
    proc = subprocess.run(
        [amtool, "check-config", str(tmp_path / "am.yml")], capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_critical_pages_on_call_and_warnings_go_to_the_team_grouped(
    alertmanager: tuple[str, Receiver],
) -> None:
    url, receiver = alertmanager
    post(
        url,
        {
            "alertname": "ProducerDroppingEvents",
            "severity": "critical",
            "namespace": "pipeline",
            "pod": "a",
        },
        {
            "alertname": "ProducerDroppingEvents",
            "severity": "critical",
            "namespace": "pipeline",
            "pod": "b",
        },
        {"alertname": "GpuTemperatureHigh", "severity": "warning", "namespace": "pipeline"},
        {"alertname": "SomethingInformative", "severity": "info", "namespace": "pipeline"},
    )
    received = wait_for(receiver, 2)
    by_path = dict(received)
    assert sorted(by_path) == ["/on-call", "/team"], received
    page = by_path["/on-call"]
    assert page["groupLabels"] == {"alertname": "ProducerDroppingEvents", "namespace": "pipeline"}
    assert sorted(a["labels"]["pod"] for a in page["alerts"]) == ["a", "b"]  # one message
    assert by_path["/team"]["groupLabels"]["alertname"] == "GpuTemperatureHigh"
    assert len(received) == 2  # info goes nowhere


def test_a_down_dependency_silences_the_symptoms_it_causes(
    alertmanager: tuple[str, Receiver],
) -> None:
    url, receiver = alertmanager
    post(
        url,
        {
            "alertname": "DependencyDown",
            "severity": "critical",
            "namespace": "pipeline",
            "dependency": "kafka",
        },
        {"alertname": "NoEventsStored", "severity": "critical", "namespace": "pipeline"},
        {"alertname": "ConsumerLagGrowing", "severity": "warning", "namespace": "pipeline"},
        {"alertname": "ConsumerLagGrowing", "severity": "warning", "namespace": "elsewhere"},
    )
    received = wait_for(receiver, 2)
    names = sorted(
        (path, p["groupLabels"]["alertname"], p["groupLabels"]["namespace"]) for path, p in received
    )
    assert names == [
        ("/on-call", "DependencyDown", "pipeline"),
        ("/team", "ConsumerLagGrowing", "elsewhere"),  # another namespace: not inhibited
    ], received
