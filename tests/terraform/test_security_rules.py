"""The security module's rule tables, evaluated by Terraform with stand-in group IDs.

Its `locals` blocks decide every node-to-node and egress rule. They need no provider once the
two security group IDs are replaced by strings, so `terraform apply` evaluates them offline.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from .helpers import TERRAFORM_DIR, run, terraform_env

MODULE = TERRAFORM_DIR / "modules/security"
K3S_NODE_PORTS = {"vxlan": (8472, "udp"), "wireguard-native": (51820, "udp")}


def evaluate_rules(
    terraform_bin: Path, workdir: Path, flannel_backend: str, *extra_vars: str
) -> dict[str, Any]:
    text = (MODULE / "main.tf").read_text()
    locals_blocks = re.findall(r"^locals \{.*?^\}", text, flags=re.M | re.S)
    assert locals_blocks, "no locals in modules/security/main.tf"
    config = "\n".join(locals_blocks)
    config = config.replace("aws_security_group.server.id", '"sg-server"')
    config = config.replace("aws_security_group.agent.id", '"sg-agent"')
    assert "aws_" not in config, "the rule tables now depend on a resource; update this test"
    shutil.copy(MODULE / "variables.tf", workdir / "variables.tf")
    (workdir / "rules.tf").write_text(
        config
        + '\noutput "node_rules" { value = local.node_rules }'
        + '\noutput "egress_rules" { value = local.egress_rules }\n'
    )
    env = terraform_env()
    assert run([terraform_bin, "init", "-no-color"], cwd=workdir, env=env).returncode == 0
    applied = run(
        [
            terraform_bin,
            "apply",
            "-auto-approve",
            "-no-color",
            "-var",
            f"flannel_backend={flannel_backend}",
            *(arg for var in extra_vars for arg in ("-var", var)),
        ],
        cwd=workdir,
        env=env,
    )
    assert applied.returncode == 0, applied.stderr
    result = run([terraform_bin, "output", "-json"], cwd=workdir, env=env)
    outputs: dict[str, Any] = json.loads(result.stdout)
    return {name: value["value"] for name, value in outputs.items()}


@pytest.mark.parametrize("flannel_backend", sorted(K3S_NODE_PORTS))
def test_nodes_open_only_the_kubelet_and_overlay_ports_to_each_other(
    terraform_bin: Path, tmp_path: Path, flannel_backend: str
) -> None:
    rules = evaluate_rules(terraform_bin, tmp_path, flannel_backend)["node_rules"]

    ports = {(r["port"], r["protocol"]) for r in rules.values()}
    pairs = {(r["to"], r["from"]) for r in rules.values()}
    assert ports == {(10250, "tcp"), K3S_NODE_PORTS[flannel_backend]}
    assert pairs == {("server", "agent"), ("agent", "server"), ("agent", "agent")}
    assert not any(r["port"] in (22, 2379, 2380) for r in rules.values())


def test_egress_to_the_internet_is_https_and_http_only(terraform_bin: Path, tmp_path: Path) -> None:
    rules = evaluate_rules(terraform_bin, tmp_path, "vxlan")["egress_rules"]

    internet = {(r["port"], r["protocol"]) for r in rules.values() if r["cidr"] == "0.0.0.0/0"}
    anything = [r for r in rules.values() if r["protocol"] == "-1"]
    assert internet == {(443, "tcp"), (80, "tcp")}
    assert anything and all(r["cidr"] is None and r["target"] for r in anything)


def test_extra_node_ports_open_between_nodes_only(terraform_bin: Path, tmp_path: Path) -> None:
    node_exporter = (
        'extra_node_ports=[{name="node-exporter",port=9100,protocol="tcp",'
        'description="Prometheus node-exporter"}]'
    )
    rules = evaluate_rules(terraform_bin, tmp_path, "vxlan", node_exporter)["node_rules"]

    extra = [r for r in rules.values() if r["port"] == 9100]
    assert {(r["to"], r["from"]) for r in extra} == {
        ("server", "agent"),
        ("agent", "server"),
        ("agent", "agent"),
    }
