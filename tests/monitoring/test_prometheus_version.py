"""The cluster runs the Prometheus release that our rules are tested with: the image tag in
monitoring/kube-prometheus-stack/values.yaml matches the prometheus module that
scripts/gotools/prometheus/go.mod pins (module v0.3XX.Y is Prometheus 3.XX.Y), and the
prometheus and promtool that `make setup` built report that version."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GO_MOD = REPO / "scripts" / "gotools" / "prometheus" / "go.mod"
VALUES = REPO / "monitoring" / "kube-prometheus-stack" / "values.yaml"
BIN = REPO / ".tools" / "bin"

# A require line, in a block or on its own; the tool lines name packages below the module.
_REQUIRE = re.compile(
    r"^\s*(?:require\s+)?github\.com/prometheus/prometheus\s+(v\S+)", re.MULTILINE
)
_MODULE_VERSION = re.compile(r"v0\.(\d)(\d\d)\.(\d+)")


def release_of(module_version: str) -> str:
    """Prometheus's release for its Go module's version: v0.316.0 -> 3.16.0."""
    m = _MODULE_VERSION.fullmatch(module_version)
    if m is None:
        raise ValueError(f"not a Prometheus 3 module version (v0.3XX.Y): {module_version}")
    return f"{int(m[1])}.{int(m[2])}.{int(m[3])}"


def pinned_release(go_mod: Path) -> str:
    found = _REQUIRE.findall(go_mod.read_text())
    assert len(found) == 1, f"{go_mod}: one require line of github.com/prometheus/prometheus"
    return release_of(found[0])


def image_tag(values: Path) -> str:
    doc = yaml.safe_load(values.read_text())
    tag = doc["prometheus"]["prometheusSpec"]["image"]["tag"]
    assert isinstance(tag, str), f"{values}: prometheus.prometheusSpec.image.tag is a string"
    return tag


def mismatch(go_mod: Path, values: Path) -> str | None:
    """Why the cluster's Prometheus and the pinned module differ, or None if they agree."""
    want = "v" + pinned_release(go_mod)
    have = image_tag(values)
    if have == want:
        return None
    return f"{values.name} runs Prometheus {have}, {go_mod} builds {want}"


@pytest.mark.parametrize(
    ("module_version", "release"),
    [("v0.316.0", "3.16.0"), ("v0.305.2", "3.5.2"), ("v0.300.0", "3.0.0")],
)
def test_module_versions_map_to_releases(module_version: str, release: str) -> None:
    assert release_of(module_version) == release


@pytest.mark.parametrize("bad", ["v3.16.0", "v0.54.1", "v0.316"])
def test_other_versions_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        release_of(bad)


def test_the_cluster_runs_the_pinned_release() -> None:
    assert mismatch(GO_MOD, VALUES) is None


def test_a_different_image_tag_is_caught(tmp_path: Path) -> None:
    doc = yaml.safe_load(VALUES.read_text())
    doc["prometheus"]["prometheusSpec"]["image"]["tag"] = "v3.15.0"
    planted = tmp_path / "values.yaml"
    planted.write_text(yaml.safe_dump(doc))
    assert mismatch(GO_MOD, planted) is not None


def test_a_different_module_is_caught(tmp_path: Path) -> None:
    text = GO_MOD.read_text()
    planted = tmp_path / "go.mod"
    planted.write_text(
        _REQUIRE.sub(lambda m: m[0].replace(m[1], "v0.317.0"), text, count=1),
    )
    assert pinned_release(planted) == "3.17.0"
    assert mismatch(planted, VALUES) is not None


@pytest.mark.parametrize("binary", ["prometheus", "promtool"])
def test_the_built_binaries_report_the_pinned_release(binary: str) -> None:
    path = BIN / binary
    if not path.exists():
        pytest.skip(f"{path} not built: run `make setup`")
    out = subprocess.run(
        [str(path), "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    first = (out.stdout + out.stderr).strip().splitlines()[0]
    assert first.startswith(f"{binary}, version {pinned_release(GO_MOD)} "), first
