"""operators.py: the Prometheus Operator the simulation runs, with the chart's arguments.
The Deployment is recorded from kube-prometheus-stack 88.5.3 rendered with our values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gpu_analytics_tools.cluster_sim import operators
from gpu_analytics_tools.cluster_sim.layout import tool
from gpu_analytics_tools.tools import ToolMissingError

DEPLOYMENT = yaml.safe_load(
    (Path(__file__).parent / "testdata" / "prometheus-operator-deployment.yaml").read_text()
)
GRAFANA = {"image": "registry.example/grafana/grafana:12"}
OTHER = {
    "metadata": {"name": "grafana", "namespace": "kube-prometheus-stack"},
    "spec": {"template": {"spec": {"containers": [GRAFANA]}}},
}


def test_the_chart_operator_is_found_by_its_image_among_other_deployments() -> None:
    found = operators.chart_operator({"items": [OTHER, DEPLOYMENT]})
    assert found is not None
    where, args = found
    assert where == "kube-prometheus-stack/kube-prometheus-stack-operator"
    assert "--kubelet-service=kube-system/kube-prometheus-stack-kubelet" in args
    assert operators.chart_operator({"items": [OTHER]}) is None
    image = "registry.example/prometheus-operator/prometheus-operator:v0.93.1@sha256:0"
    digest = {**OTHER, "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}
    assert operators.chart_operator({"items": [digest]}) is not None


def test_repository_drops_digest_and_tag_but_keeps_a_registry_port() -> None:
    image = "registry.example:5000/prometheus-operator/prometheus-operator"
    assert operators.repository(image) == image
    assert operators.repository(f"{image}:v0.93.1") == image
    assert operators.repository(f"{image}:v0.93.1@sha256:0") == image
    assert operators.repository(f"{image}@sha256:0") == image


def test_argv_keeps_the_charts_arguments_and_serves_plain_http_on_loopback() -> None:
    _, args = operators.chart_operator({"items": [DEPLOYMENT]}) or ("", [])
    argv = operators.operator_argv(
        Path("/bin/op"), args, "https://127.0.0.1:6443", Path("ca.crt"), Path("a.crt"),
        Path("a.key"), 8085,
    )  # fmt: skip
    assert argv[0] == "/bin/op"
    kept = [a for a in args if not a.startswith("--web.")]
    assert argv[1 : 1 + len(kept)] == kept
    # The chart's TLS files live in a Secret volume no process here has.
    assert not [a for a in argv if a.startswith(("--web.enable-tls", "--web.cert-file"))]
    assert [a for a in argv if a.startswith("--web.")] == ["--web.listen-address=127.0.0.1:8085"]
    assert "--apiserver=https://127.0.0.1:6443" in argv
    assert {"--ca-file=ca.crt", "--cert-file=a.crt", "--key-file=a.key"} <= set(argv)


def test_flags_the_built_operator_does_not_know_are_left_out() -> None:
    try:
        known = operators.binary_flags(tool("prometheus-operator"))
    except ToolMissingError as exc:
        pytest.skip(str(exc))
    _, args = operators.chart_operator({"items": [DEPLOYMENT]}) or ("", [])
    kept, dropped = operators.split_known(args, known)
    assert kept == args and dropped == []  # the recorded chart's flags are all known
    planted = ["--flag-of-a-newer-release=1", "--another-one", "value", "-kubelet-endpoints=true"]
    kept, dropped = operators.split_known([*args, *planted], known)
    assert kept == [*args, "-kubelet-endpoints=true"]
    assert dropped == ["--flag-of-a-newer-release=1", "--another-one", "value"]
    assert operators.split_known(planted, set()) == (planted, [])  # no help: keep them all


def test_known_flags_reads_go_flag_help() -> None:
    help_text = "Usage of op:\n\nArguments:\n  -apiserver string\n    \tURL\n  -web.enable-tls\n"
    assert operators.known_flags(help_text) == {"--apiserver", "--web.enable-tls"}
