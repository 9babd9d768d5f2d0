"""checkov over terraform/ with the skips in terraform/.checkov.yaml, and on planted mistakes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .helpers import TERRAFORM_DIR, copy_terraform_tree, load_unique, run

CONFIG = TERRAFORM_DIR / ".checkov.yaml"

WORLD_OPEN_SSH = """
resource "aws_vpc_security_group_ingress_rule" "ssh_from_anywhere" {
  security_group_id = aws_security_group.server.id
  description       = "SSH from anywhere"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}
"""


@dataclass(frozen=True)
class Scan:
    passed: int
    failed: int
    skipped: int
    failed_checks: list[tuple[str, str]]  # (check id, resource)
    output: str


def scan(checkov_bin: Path, directory: Path) -> Scan:
    result = run(
        [
            checkov_bin,
            "--config-file",
            directory / ".checkov.yaml",
            "--directory",
            directory,
            "--output",
            "json",
        ],
        cwd=directory,
        timeout=600,
    )
    assert result.returncode in (0, 1), f"checkov crashed:\n{result.stderr[-4000:]}"
    report: Any = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert reports, f"checkov reported nothing:\n{result.stderr[-2000:]}"
    passed = failed = skipped = 0
    failed_checks: list[tuple[str, str]] = []
    for part in reports:
        summary = part["summary"]
        passed += summary["passed"]
        failed += summary["failed"]
        skipped += summary["skipped"]
        failed_checks += [(c["check_id"], c["resource"]) for c in part["results"]["failed_checks"]]
    return Scan(passed, failed, skipped, failed_checks, result.stdout)


@pytest.fixture(scope="module")
def clean_scan(checkov_bin: Path) -> Scan:
    return scan(checkov_bin, TERRAFORM_DIR)


@pytest.fixture(scope="module")
def planted_scan(checkov_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    """One scan of a copy with three planted mistakes, each in a different resource."""
    tree = copy_terraform_tree(tmp_path_factory.mktemp("checkov"))

    security = tree / "modules/security/main.tf"
    security.write_text(security.read_text() + WORLD_OPEN_SSH)

    cluster = tree / "modules/cluster/main.tf"
    text = cluster.read_text()
    server, rest = text.split('resource "aws_instance" "agent"', 1)
    assert server.count("encrypted             = true") == 1
    server = server.replace("encrypted             = true", "encrypted             = false")
    assert rest.count('http_tokens                 = "required"') == 2
    rest = rest.replace(
        'http_tokens                 = "required"', 'http_tokens                 = "optional"', 1
    )
    cluster.write_text(server + 'resource "aws_instance" "agent"' + rest)

    return scan(checkov_bin, tree)


def test_checkov_passes_on_terraform(clean_scan: Scan) -> None:
    assert clean_scan.failed == 0, "\n".join(f"{c} {r}" for c, r in clean_scan.failed_checks)
    assert clean_scan.passed > 100


def test_every_skipped_check_has_a_reason() -> None:
    config = load_unique(CONFIG.read_text())
    lines = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\s*-\s*(CKV\w+)\s*(?:#\s*(.*))?$", CONFIG.read_text(), re.M)
    }

    assert config["skip-check"], "no skip list"
    for check_id in config["skip-check"]:
        reason = lines.get(check_id) or ""
        assert len(reason) >= 30, f"{check_id} is skipped without a reason comment"


def test_checkov_flags_a_world_open_ssh_rule(planted_scan: Scan) -> None:
    assert (
        "CKV_AWS_24",
        "module.security.aws_vpc_security_group_ingress_rule.ssh_from_anywhere",
    ) in (planted_scan.failed_checks)


def test_checkov_flags_an_unencrypted_root_volume(planted_scan: Scan) -> None:
    assert ("CKV_AWS_8", "module.cluster.aws_instance.server") in planted_scan.failed_checks


def test_checkov_flags_imdsv1(planted_scan: Scan) -> None:
    assert ("CKV_AWS_79", "module.cluster.aws_instance.agent") in planted_scan.failed_checks
