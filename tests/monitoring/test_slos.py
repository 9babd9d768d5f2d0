"""The SLO rules are what Sloth generates from the spec, byte for byte (`make slos`), and a
changed spec is caught; each SLO's SLI is explained in monitoring/README.md."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SLOS = REPO / "monitoring" / "slos"
SPEC = SLOS / "processor.sloth.yaml"
SLOTH = REPO / ".tools" / "bin" / "sloth"


def generate(spec: Path, out: Path) -> bytes:
    if not SLOTH.exists():
        pytest.fail("sloth not found: run `make setup`")
    run = subprocess.run(
        [str(SLOTH), "generate", "--input", str(spec), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out.read_bytes()


def test_committed_rules_are_what_sloth_generates(tmp_path: Path) -> None:
    assert generate(SPEC, tmp_path / "out.yaml") == (SLOS / "processor.yaml").read_bytes(), (
        "run `make slos` and commit monitoring/slos/processor.yaml"
    )


def test_a_changed_objective_is_caught(tmp_path: Path) -> None:
    spec = yaml.safe_load(SPEC.read_text())
    spec["spec"]["slos"][0]["objective"] = 99.9
    planted = tmp_path / "spec.yaml"
    planted.write_text(yaml.safe_dump(spec))
    assert generate(planted, tmp_path / "out.yaml") != (SLOS / "processor.yaml").read_bytes()


def test_the_slos_the_product_promises() -> None:
    slos = {s["name"]: s for s in yaml.safe_load(SPEC.read_text())["spec"]["slos"]}
    assert {name: s["objective"] for name, s in slos.items()} == {
        "ingest-availability": 99.5,
        "freshness": 99,
        "ingest-latency": 99,
    }
    # thresholds that must stay bucket bounds of the histograms behind them
    assert 'le="10.0"' in slos["freshness"]["sli"]["events"]["errorQuery"]
    assert 'le="0.25"' in slos["ingest-latency"]["sli"]["events"]["errorQuery"]
    readme = (REPO / "monitoring" / "README.md").read_text()
    for name in slos:
        assert f"| {name} |" in readme, f"the README's SLO table explains {name}'s SLI"


def test_thresholds_are_bucket_bounds_of_the_histograms() -> None:
    from gpu_analytics.processor import metrics

    assert 0.25 in metrics.HTTP_LATENCY_BUCKETS
    assert 10 in metrics.END_TO_END_LATENCY._bounds  # noqa: SLF001 - our own collector
