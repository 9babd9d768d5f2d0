"""Our PrometheusRules pass `promtool check rules` and their promtool unit tests
(`monitoring/rules/<name>.test.yaml`), and a broken rule is caught."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring" / "rules"
PROMTOOL = REPO / ".tools" / "bin" / "promtool"


def _promtool() -> str:
    if not PROMTOOL.exists():
        pytest.fail("promtool not found: run `make setup`")
    return str(PROMTOOL)


def _extract(rule_file: Path, dest: Path) -> Path:
    """The groups of a PrometheusRule as a plain Prometheus rules file."""
    doc = yaml.safe_load(rule_file.read_text())
    assert doc["kind"] == "PrometheusRule", rule_file
    out = dest / f"{rule_file.stem}.rules.yaml"
    out.write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}))
    return out


def _rule_files() -> list[Path]:
    return sorted(
        p
        for p in RULES.glob("*.yaml")
        if p.name != "kustomization.yaml" and not p.name.endswith(".test.yaml")
    )


@pytest.mark.parametrize("rule_file", _rule_files(), ids=lambda p: p.name)
def test_rules_check_and_unit_tests_pass(rule_file: Path, tmp_path: Path) -> None:
    extracted = _extract(rule_file, tmp_path)
    check = subprocess.run(
        [_promtool(), "check", "rules", str(extracted)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    unit = RULES / f"{rule_file.stem}.test.yaml"
    assert unit.exists(), f"every rule file has promtool unit tests: {unit.name} is missing"
    shutil.copy(unit, tmp_path / unit.name)
    test = subprocess.run(
        [_promtool(), "test", "rules", unit.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_a_broken_expression_fails_the_check(tmp_path: Path) -> None:
    doc = yaml.safe_load((RULES / "processor-rules.yaml").read_text())
    doc["spec"]["groups"][0]["rules"][0]["expr"] = "absent(up{"
    planted = tmp_path / "broken.yaml"
    planted.write_text(yaml.safe_dump(doc))
    check = subprocess.run(
        [_promtool(), "check", "rules", str(_extract(planted, tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode != 0


def test_a_wrong_expectation_fails_the_unit_test(tmp_path: Path) -> None:
    _extract(RULES / "processor-rules.yaml", tmp_path)
    unit = yaml.safe_load((RULES / "processor-rules.test.yaml").read_text())
    unit["tests"][1]["alert_rule_test"][0]["eval_time"] = "9m"  # it fires by then
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(unit))
    test = subprocess.run(
        [_promtool(), "test", "rules", "t.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert test.returncode != 0
