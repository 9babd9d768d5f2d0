"""The local Prometheus labels its targets as the ServiceMonitors do in the cluster, and those
labels are derived from the manifests (services/deploy/base), not repeated: a renamed Service
or namespace shows in them."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from gpu_analytics_tools.observability.prometheus import write_config
from gpu_analytics_tools.observability.targets import all_targets, cluster_targets

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "services" / "deploy" / "base"


def test_labels_are_those_the_operator_gives() -> None:
    targets = cluster_targets(BASE)
    assert set(targets) == {"processor", "producer"}
    assert targets["processor"].port == 8080
    assert targets["processor"].labels == {
        "job": "processor",
        "namespace": "pipeline",
        "service": "processor",
        "endpoint": "http",
        "pod": "processor-local",
        "container": "processor",
    }
    assert targets["producer"].labels["endpoint"] == "metrics"
    assert targets["producer"].port == 9100


def test_the_brokers_exporter_is_a_target_with_the_statefulsets_labels() -> None:
    targets = all_targets(REPO)
    assert set(targets) == {"processor", "producer", "kafka-metrics"}
    assert targets["kafka-metrics"].port == 9404
    assert targets["kafka-metrics"].labels == {
        "job": "kafka-metrics",
        "namespace": "kafka",
        "service": "kafka-metrics",
        "endpoint": "metrics",
        "pod": "kafka-local",
        "container": "kafka",
    }


def test_labels_follow_the_manifests(tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(BASE, base)
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    kustomization["namespace"] = "telemetry"
    (base / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    service = base / "processor-service.yaml"
    service.write_text(service.read_text().replace("name: processor\n", "name: api\n", 1))
    labels = cluster_targets(base)["api"].labels
    assert (labels["job"], labels["service"], labels["namespace"]) == ("api", "api", "telemetry")


def test_the_local_config_scrapes_with_those_labels_and_loads_every_rule(tmp_path: Path) -> None:
    config = yaml.safe_load(
        write_config(
            tmp_path, {"processor": "127.0.0.1:18080", "producer": "127.0.0.1:19100"}
        ).read_text()
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["processor"]["static_configs"] == [
        {
            "targets": ["127.0.0.1:18080"],
            "labels": {
                "namespace": "pipeline",
                "service": "processor",
                "endpoint": "http",
                "pod": "processor-local",
                "container": "processor",
            },
        }
    ]
    assert sorted(Path(f).name for f in config["rule_files"]) == [
        "gpu-analytics.yaml",
        "processor.yaml",
    ]
