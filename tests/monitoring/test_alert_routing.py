"""The Alertmanager configuration of monitoring/kube-prometheus-stack/values.yaml on a real
Alertmanager (the cluster's release, built by make setup): alerts posted to its API reach a
local webhook receiver with the routing, grouping and inhibition the configuration promises.
The receivers' URL files, which the Secret alertmanager-receivers holds in the cluster, point at
that receiver here."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gpu_analytics_tools.gitops.alertmanager import alertmanager_config
from gpu_analytics_tools.observability.prometheus import write_config
from gpu_analytics_tools.stack.pipeline import prometheus_binary
from gpu_analytics_tools.stack.process import free_port, spawn, stop_child
from gpu_analytics_tools.testing.webhooks import WebhookReceiver
from gpu_analytics_tools.tools import find

REPO = Path(__file__).resolve().parents[2]
SECRET_DIR = "/etc/alertmanager/secrets/alertmanager-receivers/"


def start_alertmanager(
    tmp_path: Path, cfg: dict[str, Any], receiver: WebhookReceiver
) -> tuple[str, subprocess.Popen[bytes]]:
    """A real Alertmanager on `cfg`, each of its Secret's URL files naming a path of `receiver`
    (the key's name: /on-call-webhook-url, /team-slack-url, ...)."""
    binary = find("alertmanager", path=False)
    if binary is None:
        pytest.skip("alertmanager not built: run make setup")
    text = yaml.safe_dump(cfg)
    for key in set(re.findall(re.escape(SECRET_DIR) + r"([\w-]+)", text)):
        url_file = tmp_path / key
        url_file.write_text(f"http://127.0.0.1:{receiver.port}/{key}")
        text = text.replace(f"{SECRET_DIR}{key}", str(url_file))
    # Seconds, not minutes: the grouping is what is tested, not its timing.
    routed = yaml.safe_load(text)
    routed["route"].update(group_wait="1s", group_interval="1s")
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(routed))
    port, cluster_port = free_port(), free_port()
    proc = spawn(
        [binary, f"--config.file={tmp_path / 'alertmanager.yml'}",
         f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         f"--cluster.listen-address=127.0.0.1:{cluster_port}"],
        tmp_path / "alertmanager.log", cwd=tmp_path,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return url, proc


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def alertmanager(
    tmp_path: Path, receiver: WebhookReceiver
) -> Iterator[tuple[str, WebhookReceiver]]:
    url, proc = start_alertmanager(tmp_path, alertmanager_config(REPO), receiver)
    try:
        yield url, receiver
    finally:
        stop_child(proc, 10)


def post(url: str, *alerts: dict[str, str]) -> None:
    now = datetime.now(UTC).isoformat()
    body = [{"labels": labels, "startsAt": now} for labels in alerts]
    assert httpx.post(f"{url}/api/v2/alerts", json=body, timeout=5).status_code == 200


def wait_for(receiver: WebhookReceiver, count: int, seconds: float = 15) -> list[tuple[str, Any]]:
    receiver.wait(seconds, until=lambda got: len(got) >= count)
    time.sleep(2)  # and nothing more arrives
    return receiver.received


def test_critical_pages_on_call_and_warnings_go_to_the_team_grouped(
    alertmanager: tuple[str, WebhookReceiver],
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
    assert sorted(by_path) == ["/on-call-webhook-url", "/team-webhook-url"], received
    page = by_path["/on-call-webhook-url"]
    assert page["groupLabels"] == {"alertname": "ProducerDroppingEvents", "namespace": "pipeline"}
    assert sorted(a["labels"]["pod"] for a in page["alerts"]) == ["a", "b"]  # one message
    assert by_path["/team-webhook-url"]["groupLabels"]["alertname"] == "GpuTemperatureHigh"
    assert len(received) == 2  # info goes nowhere


def test_a_down_dependency_silences_the_symptoms_it_causes(
    alertmanager: tuple[str, WebhookReceiver],
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
        ("/on-call-webhook-url", "DependencyDown", "pipeline"),
        # another namespace: not inhibited
        ("/team-webhook-url", "ConsumerLagGrowing", "elsewhere"),
    ], received


def test_the_slack_file_restates_the_receivers_and_adds_slack_only() -> None:
    plain = {r["name"]: r for r in alertmanager_config(REPO)["receivers"]}
    slack = {r["name"]: r for r in alertmanager_config(REPO, slack=True)["receivers"]}
    assert plain.keys() == slack.keys()
    for name, receiver in slack.items():
        assert {k: v for k, v in receiver.items() if k != "slack_configs"} == plain[name]
    assert all("slack_configs" in slack[name] for name in ("on-call", "team"))
    # the routes themselves are untouched
    assert alertmanager_config(REPO, slack=True)["route"] == alertmanager_config(REPO)["route"]


def test_with_the_slack_file_a_page_reaches_the_webhook_and_slack(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    url, proc = start_alertmanager(tmp_path, alertmanager_config(REPO, slack=True), receiver)
    try:
        post(url, {"alertname": "ProcessorDown", "severity": "critical", "namespace": "pipeline"})
        received = dict(wait_for(receiver, 2))
    finally:
        stop_child(proc, 10)
    assert sorted(received) == ["/on-call-slack-url", "/on-call-webhook-url"], received
    attachment = received["/on-call-slack-url"]["attachments"][0]  # Slack's message format
    assert attachment["title"] == "[FIRING] ProcessorDown (pipeline)"


def test_a_rule_that_fires_on_prometheus_pages_through_alertmanager(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    """The whole way: our rules on a real Prometheus, which finds no processor up (its target
    is a closed port), fires ProcessorDown and sends it to the real Alertmanager, which pages
    on-call. Only the rules' `for` is shortened to 0s, so the test takes seconds, not 5 min."""
    prometheus = prometheus_binary()
    if prometheus is None:
        pytest.skip("prometheus not built: run make setup")
    am_dir = tmp_path / "alertmanager"
    am_dir.mkdir()
    am_url, am_proc = start_alertmanager(am_dir, alertmanager_config(REPO), receiver)
    prom_dir = tmp_path / "prometheus"
    config_path = write_config(prom_dir, {"processor": f"127.0.0.1:{free_port()}"}, interval="1s")
    for rules in (prom_dir / "rules").iterdir():
        doc = yaml.safe_load(rules.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = "0s"
        rules.write_text(yaml.safe_dump(doc, sort_keys=False))
    prom_cfg = yaml.safe_load(config_path.read_text())
    prom_cfg["alerting"] = {
        "alertmanagers": [{"static_configs": [{"targets": [am_url.removeprefix("http://")]}]}]
    }
    config_path.write_text(yaml.safe_dump(prom_cfg, sort_keys=False))
    prom_proc = spawn(
        [prometheus, f"--config.file={config_path}", f"--storage.tsdb.path={prom_dir / 'data'}",
         f"--web.listen-address=127.0.0.1:{free_port()}"],
        prom_dir / "prometheus.log", cwd=prom_dir,
    )  # fmt: skip
    try:
        # Alertmanager's group_wait alone is 30 s; a loaded 2-core machine has needed more
        # than the other 30 s to start Prometheus and evaluate the rules once.
        receiver.wait(120, until=lambda got: any(
            p["groupLabels"].get("alertname") == "ProcessorDown" for _, p in got
        ))  # fmt: skip
    finally:
        stop_child(prom_proc, 10)
        stop_child(am_proc, 10)
    pages = [
        p for path, p in receiver.received
        if path == "/on-call-webhook-url" and p["groupLabels"].get("alertname") == "ProcessorDown"
    ]  # fmt: skip
    assert pages, (receiver.received, (prom_dir / "prometheus.log").read_text()[-2000:])
    alert = pages[0]["alerts"][0]
    assert alert["status"] == "firing"
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"].endswith("monitoring/README.md#processordown")
    assert not [p for path, p in receiver.received if path.startswith("/team")
                and p["groupLabels"].get("alertname") == "ProcessorDown"]  # fmt: skip


def test_mongodb_down_silences_the_processor_losing_it_not_losing_kafka(
    alertmanager: tuple[str, WebhookReceiver],
) -> None:
    url, receiver = alertmanager
    post(
        url,
        {"alertname": "MongoDBDown", "severity": "critical", "namespace": "mongodb"},
        {
            "alertname": "DependencyDown", "severity": "critical", "namespace": "pipeline",
            "dependency": "mongodb",
        },
        {
            "alertname": "DependencyDown", "severity": "critical", "namespace": "pipeline",
            "dependency": "kafka",
        },
    )  # fmt: skip
    received = wait_for(receiver, 2)
    pages = sorted(
        (p["groupLabels"]["alertname"], a["labels"].get("dependency", ""))
        for _, p in received
        for a in p["alerts"]
    )
    assert pages == [("DependencyDown", "kafka"), ("MongoDBDown", "")], received
