"""scripts/setup.sh's tiers: `dev` and `validate` install their own steps and stop; an unknown
tier is refused. Run after `make setup` (make test does it first), so every step is there and
each tier only checks its stamps."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def setup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["scripts/setup.sh", *args], cwd=REPO, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("tier", "steps"),
    [
        ("dev", ["uv", "Python dependencies", "Apache Kafka"]),
        ("validate", ["uv", "Python dependencies", "checkov", "kubeconform", "kustomize",
                      "Alertmanager, amtool", "Kubernetes JSON schemas"]),
    ],
)  # fmt: skip
def test_a_tier_runs_its_steps_only(tier: str, steps: list[str]) -> None:
    proc = setup(tier)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = re.findall(r"setup: \[(\d+)/(\d+)\] (.+?) \.\.\. ", proc.stdout)
    assert [int(n) for n, _, _ in ran] == list(range(1, len(steps) + 1))
    assert {int(total) for _, total, _ in ran} == {len(steps)}
    for (_, _, label), step in zip(ran, steps, strict=True):
        assert label.startswith(step), (label, step)
    assert f"ready for make {tier}" in proc.stdout


def test_an_unknown_tier_is_refused() -> None:
    proc = setup("everything")
    assert proc.returncode == 2
    assert "unknown tier everything (all, dev or validate)" in proc.stderr


def test_the_readme_shows_setup_steps_as_setup_prints_them() -> None:
    """README's `make setup` sample: every step line is one setup.sh prints (number, total and
    label, with its build-time estimate), so the estimates there cannot drift from the script."""
    proc = setup()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    printed = set(re.findall(r"^(setup: \[\d+/\d+\] .+?) \.\.\. ", proc.stdout, re.M))
    shown = re.findall(r"^(setup: \[\d+/\d+\] .+?) \.\.\. ", (REPO / "README.md").read_text(), re.M)
    assert len(shown) >= 3
    assert [line for line in shown if line not in printed] == []
