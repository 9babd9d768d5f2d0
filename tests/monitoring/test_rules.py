"""Our PrometheusRules (hand-written alerts in monitoring/rules, Sloth's SLO rules in
monitoring/slos) pass `promtool check rules` and their promtool unit tests
(`<name>.test.yaml` beside each), every alert has a test where it fires and one where it stays
silent, carries summary, description, severity and a runbook that exists; and a broken rule
or a wrong expectation is caught."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_analytics_tools.observability.prometheus import RULE_DIRS, prometheus_rules

REPO = Path(__file__).resolve().parents[2]
PROMTOOL = REPO / ".tools" / "bin" / "promtool"
README = REPO / "monitoring" / "README.md"
RUNBOOKS = "https://github.com/gpu-analytics/gpu-analytics-platform/blob/main/monitoring/README.md#"


def _promtool() -> str:
    if not PROMTOOL.exists():
        pytest.fail("promtool not found: run `make setup`")
    return str(PROMTOOL)


def _rule_files() -> list[Path]:
    return [
        REPO / folder / name
        for folder in RULE_DIRS
        for name in prometheus_rules()
        if (REPO / folder / name).exists()
    ]


def _extract(rule_file: Path, dest: Path) -> Path:
    """The groups of a PrometheusRule as a plain Prometheus rules file."""
    doc = next(d for d in yaml.safe_load_all(rule_file.read_text()) if d)
    assert doc["kind"] == "PrometheusRule", rule_file
    out = dest / f"{rule_file.stem}.rules.yaml"
    out.write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}))
    return out


def _alerts() -> list[dict[str, Any]]:
    return [
        rule
        for doc in prometheus_rules().values()
        for group in doc["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def _promtool_run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_every_rule_folder_has_rules() -> None:
    names = {p.parent.name for p in _rule_files()}
    assert names == {"rules", "slos"}


@pytest.mark.parametrize("rule_file", _rule_files(), ids=lambda p: p.name)
def test_rules_check_and_unit_tests_pass(rule_file: Path, tmp_path: Path) -> None:
    extracted = _extract(rule_file, tmp_path)
    check = _promtool_run(["check", "rules", str(extracted)], tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = rule_file.with_name(f"{rule_file.stem}.test.yaml")
    assert unit.exists(), f"every rule file has promtool unit tests: {unit.name} is missing"
    shutil.copy(unit, tmp_path / unit.name)
    test = _promtool_run(["test", "rules", unit.name], tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for rule_file in _rule_files():
        unit = yaml.safe_load(rule_file.with_name(f"{rule_file.stem}.test.yaml").read_text())
        for case in unit["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names - fires == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"


def test_every_alert_says_what_it_means_and_links_its_runbook() -> None:
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in README.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in _alerts():
        name = rule["alert"]
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), name
        assert "{{ $value" in annotations.get("description", ""), f"{name}: value in description"
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, name
        url = annotations.get("runbook_url", "")
        assert url.startswith(RUNBOOKS), f"{name}: {url}"
        assert url.removeprefix(RUNBOOKS) in anchors, f"{name}: no section {url} in README"


def test_a_broken_expression_fails_the_check(tmp_path: Path) -> None:
    source = REPO / "monitoring" / "rules" / "gpu-analytics.yaml"
    doc = yaml.safe_load(source.read_text())
    doc["spec"]["groups"][1]["rules"][0]["expr"] = "absent(up{"
    planted = tmp_path / "broken.yaml"
    planted.write_text(yaml.safe_dump(doc))
    check = _promtool_run(["check", "rules", str(_extract(planted, tmp_path))], tmp_path)
    assert check.returncode != 0


def test_a_wrong_expectation_fails_the_unit_test(tmp_path: Path) -> None:
    rules = REPO / "monitoring" / "rules"
    _extract(rules / "gpu-analytics.yaml", tmp_path)
    unit = yaml.safe_load((rules / "gpu-analytics.test.yaml").read_text())
    case = next(c for c in unit["tests"] if c["name"].startswith("a processor down"))
    case["alert_rule_test"][0]["eval_time"] = "8m"  # ProcessorDown fires by then
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(unit))
    assert _promtool_run(["test", "rules", "t.yaml"], tmp_path).returncode != 0
