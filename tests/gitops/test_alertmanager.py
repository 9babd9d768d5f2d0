"""`make validate`'s amtool step (gitops/alertmanager.py) with the real amtool of the
cluster's Alertmanager release: our configurations pass, a planted mistake fails, and the
configuration is read from a rendered Secret as the chart writes it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from gpu_analytics_tools.gitops.alertmanager import (
    check_config,
    configurations,
    helm_merge,
    rendered_configurations,
)
from gpu_analytics_tools.tools import find

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def amtool() -> str:
    found = find("amtool", "AMTOOL", path=False)
    if found is None:
        pytest.skip("amtool not built: run make setup")
    return found


def test_both_configurations_pass(amtool: str) -> None:
    configs = configurations(REPO)
    assert len(configs) == 2
    for label, cfg in configs.items():
        assert check_config(amtool, label, cfg) is None, label


def test_a_route_to_a_receiver_nobody_defined_fails(amtool: str) -> None:
    cfg = configurations(REPO)["monitoring/kube-prometheus-stack/values.yaml"]
    cfg["receivers"] = [r for r in cfg["receivers"] if r["name"] != "team"]
    finding = check_config(amtool, "planted", cfg)
    assert finding is not None
    assert 'undefined receiver "team"' in finding.message


def test_the_rendered_secret_is_read_base64_or_plain(amtool: str) -> None:
    cfg = configurations(REPO)["monitoring/kube-prometheus-stack/values.yaml"]
    text = yaml.safe_dump(cfg)
    docs = [
        {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"alertmanager.yaml": "no"}},
        {
            "kind": "Secret",
            "metadata": {"name": "alertmanager-kube-prometheus-stack-alertmanager"},
            "data": {"alertmanager.yaml": base64.b64encode(text.encode()).decode()},
        },
        {"kind": "Secret", "metadata": {"name": "plain"}, "stringData": {"alertmanager.yaml": "{"}},
        {"kind": "Secret", "metadata": {"name": "other"}, "data": {"password": "eA=="}},
    ]
    found = rendered_configurations("[local] kube-prometheus-stack", docs)
    assert sorted(found) == [
        "[local] kube-prometheus-stack Secret/alertmanager-kube-prometheus-stack-alertmanager",
        "[local] kube-prometheus-stack Secret/plain",
    ]
    checked = {label: check_config(amtool, label, t) for label, t in found.items()}
    assert checked["[local] kube-prometheus-stack Secret/plain"] is not None  # "{" is no YAML
    assert all(v is None for k, v in checked.items() if k.endswith("-alertmanager"))


def test_helm_merge_merges_maps_and_replaces_lists() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert helm_merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # the input is left as it was
