"""Input validations, evaluated by Terraform itself.

A configuration made of a module's variables.tf alone needs no provider, so `terraform apply`
on it checks the defaults and every validation offline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .helpers import TERRAFORM_DIR, run, terraform_env

VALID = None

CASES: list[tuple[str, list[str], str | None]] = [
    # (module, -var assignments, expected error or VALID)
    (".", [], VALID),
    (".", ['api_allowed_cidrs=["203.0.113.7/32","198.51.100.0/24"]'], VALID),
    (".", ['gpu_agent={enabled=true,instance_type="g5.2xlarge"}'], VALID),
    (".", ['api_allowed_cidrs=["0.0.0.0/0"]'], "never 0.0.0.0/0"),
    (".", ['api_allowed_cidrs=["203.0.113.7"]'], "never 0.0.0.0/0"),
    (".", ["k3s_version=latest"], "exact K3s release"),
    (".", ["k3s_version=v1.36"], "exact K3s release"),
    (".", ["k3s_installer_sha256=abc"], "64 lowercase hex"),
    (".", ["nat_mode=double"], 'nat_mode must be "single"'),
    (".", ["flannel_backend=host-gw"], "flannel_backend must be"),
    (".", ["vpc_cidr=10.40.0.0/8"], "between /16 and /20"),
    (".", ["vpc_cidr=not-a-cidr"], "between /16 and /20"),
    (".", ['azs=["us-east-1a"]'], "exactly two zones"),
    (".", ['gpu_agent={enabled=true,instance_type="p3.2xlarge"}'], "g4dn or g5"),
    (".", ["agents={count=11}"], "whole number from 0 to 10"),
    (".", ["imds_hop_limit=3"], "imds_hop_limit must be 1 or 2"),
    (".", ['bootstrap_manifests=["../secrets.yaml"]'], "without"),
    (".", ['bootstrap_manifests=["bootstrap/argo-cd/helmchart.json"]'], "without"),
    (".", ["root_application=../clusters/aws/root-app.yaml"], "without"),
    (".", ["parameter_path=/gpu-analytics/"], "SSM path such as /gpu-analytics"),
    (".", ["parameter_path=gpu-analytics"], "SSM path such as /gpu-analytics"),
    (".", ["name=GPU"], "lowercase letters"),
    (".", ["kms_key_arn=alias/aws/ssm"], "KMS key ARN"),
    ("modules/network", ["nat_mode=always"], 'nat_mode must be "single"'),
    ("modules/security", ['api_allowed_cidrs=["0.0.0.0/0"]'], "never 0.0.0.0/0"),
    ("modules/security", ["flannel_backend=ipsec"], "flannel_backend must be"),
    (
        "modules/security",
        ['extra_node_ports=[{name="ssh",port=22,protocol="tcp",description="SSH"}]'],
        "SSH, etcd and the K3s API",
    ),
    ("modules/k3s-cloud-init", ["role=controller"], 'role must be "server" or "agent"'),
    ("modules/k3s-cloud-init", ["token_parameter_name=x'; reboot"], "SSM parameter path"),
    ("modules/k3s-cloud-init", ['manifests={"Root_App.yaml"="kind: x"}'], "lowercase letters"),
    ("modules/k3s-cloud-init", ['apply_once=["x.yaml\'; reboot"]'], "file names from"),
    ("modules/k3s-cloud-init", ["apply_once_timeout=5"], "at least 60"),
]


def case_id(case: tuple[str, list[str], str | None]) -> str:
    module, assignments, expected = case
    return f"{module}:{' '.join(assignments) or 'defaults'}:{'ok' if expected is None else 'err'}"


@pytest.mark.parametrize(
    ("module", "assignments", "expected_error"), CASES, ids=map(case_id, CASES)
)
def test_variable_validation(
    terraform_bin: Path,
    tmp_path: Path,
    module: str,
    assignments: list[str],
    expected_error: str | None,
) -> None:
    shutil.copy(TERRAFORM_DIR / module / "variables.tf", tmp_path / "variables.tf")
    env = terraform_env()
    assert run([terraform_bin, "init", "-no-color"], cwd=tmp_path, env=env).returncode == 0

    args: list[str | Path] = [terraform_bin, "apply", "-auto-approve", "-no-color"]
    for assignment in assignments:
        args += ["-var", assignment]
    result = run(args, cwd=tmp_path, env=env)
    output = " ".join((result.stdout + result.stderr).split())

    if expected_error is None:
        assert result.returncode == 0, output
    else:
        assert result.returncode != 0
        assert "Invalid value for variable" in output, output
        assert expected_error in output, output
