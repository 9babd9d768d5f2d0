"""The dashboards: generated JSON committed and current, stable uids, datasource variables,
units, thresholds, links between them and SLO panels; a stale file is caught."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_analytics_tools.observability.dashboards import BOARDS
from gpu_analytics_tools.observability.dashboards.build import generated, stale, write
from gpu_analytics_tools.observability.dashboards.common import TAG

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "monitoring" / "dashboards"


def boards() -> dict[str, dict[str, Any]]:
    return {name: json.loads((FOLDER / f"{name}.json").read_text()) for name in BOARDS}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_committed_dashboards_are_what_the_code_generates() -> None:
    assert stale() == [], "run `make dashboards` and commit the result"


def test_a_hand_edit_is_caught(tmp_path: Path) -> None:
    write(tmp_path)
    assert stale(tmp_path) == []
    doc = json.loads((tmp_path / "pipeline.json").read_text())
    doc["title"] = "edited by hand"
    (tmp_path / "pipeline.json").write_text(json.dumps(doc))
    assert stale(tmp_path) == ["pipeline.json"]


def test_every_dashboard_is_a_configmap_for_the_grafana_sidecar() -> None:
    kustomization = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())
    assert kustomization["generatorOptions"]["labels"] == {"grafana_dashboard": "1"}
    files = {f for entry in kustomization["configMapGenerator"] for f in entry["files"]}
    assert files == {f"{name}.json" for name in BOARDS}
    assert set(generated()) == files | {"kustomization.yaml"}


def test_uids_are_stable_unique_and_tagged() -> None:
    uids = {name: b["uid"] for name, b in boards().items()}
    assert uids == {
        "pipeline": "gpu-analytics-pipeline",
        "gpu-fleet": "gpu-analytics-gpu-fleet",
        "tokens-cost": "gpu-analytics-tokens-cost",
        "gpu-cost-waste": "gpu-analytics-gpu-cost-waste",
        "logs": "gpu-analytics-logs",
    }
    for board in boards().values():
        assert TAG in board["tags"]
        # the links list every dashboard with our tag: each reaches the others
        assert {"type": "dashboards", "tags": [TAG]}.items() <= board["links"][0].items()


@pytest.mark.parametrize("name", list(BOARDS))
def test_panels_use_datasource_variables_and_have_units(name: str) -> None:
    board = boards()[name]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    for panel in panels(board):
        assert panel.get("description"), f"{panel['title']}: a description says what it shows"
        for target in panel["targets"]:
            uid = target["datasource"]["uid"]
            assert uid.startswith("${") and uid[2:-1] in variables, (panel["title"], uid)
            assert variables[uid[2:-1]]["type"] == "datasource"
        if panel["type"] != "logs":
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']}: no unit"


def test_thresholds_mark_the_alert_and_slo_limits() -> None:
    def steps(board: str, title: str) -> list[float | None]:
        panel = next(p for p in panels(boards()[board]) if p["title"] == title)
        return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]

    assert steps("gpu-fleet", "Temperature") == [None, 85]  # GpuTemperatureHigh
    assert steps("gpu-fleet", "Memory used") == [None, 0.95]  # GpuMemoryNearlyFull
    assert steps("pipeline", "End-to-end latency") == [None, 10]  # freshness SLO
    assert steps("pipeline", "HTTP ingest latency") == [None, 0.25]  # latency SLO


def test_the_pipeline_shows_every_slos_error_budget() -> None:
    exprs = " ".join(t["expr"] for p in panels(boards()["pipeline"]) for t in p["targets"])
    for slo in ("ingest-availability", "freshness", "ingest-latency"):
        budget = 'slo:period_error_budget_remaining:ratio{sloth_service="processor", '
        assert f'{budget}sloth_slo="{slo}"}}' in exprs
