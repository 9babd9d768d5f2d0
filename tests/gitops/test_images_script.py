"""clusters/local/images.sh (make images): which images it builds and imports, from the pins of
the local cluster, and its refusals. Docker and k3d cannot run here: the dry run prints the
commands without them, and a stand-in k3d (a shell script) answers `cluster get`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "clusters" / "local" / "images.sh"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, **env},
    )  # fmt: skip


def test_the_dry_run_builds_and_imports_the_pinned_images() -> None:
    proc = run("--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("+ ")]
    assert len(lines) == 3
    processor = "ghcr.io/gpu-analytics/gpu-analytics-processor:0.1.0"
    producer = "ghcr.io/gpu-analytics/gpu-analytics-producer:0.1.0"
    assert lines[0].endswith(f"build -f services/Dockerfile --target processor -t {processor} .")
    assert lines[1].endswith(f"build -f services/Dockerfile --target producer -t {producer} .")
    assert lines[2].endswith(
        f"image import --mode direct --cluster gpu-analytics {processor} {producer}"
    )


def test_a_forks_image_names_and_tags_are_used(tmp_path: Path) -> None:
    pins = (REPO / "clusters" / "local" / "pipeline" / "kustomization.yaml").read_text()
    pins = pins.replace(
        "  - name: ghcr.io/gpu-analytics/gpu-analytics-processor\n",
        "  - name: ghcr.io/gpu-analytics/gpu-analytics-processor\n"
        "    newName: ghcr.io/someone/gpu-analytics-processor\n",
    ).replace('newTag: "0.1.0"', "newTag: sha-1a2b3c4")
    fork = tmp_path / "kustomization.yaml"
    fork.write_text(pins)
    proc = run("--dry-run", PIPELINE_KUSTOMIZATION=str(fork))
    assert proc.returncode == 0, proc.stderr
    assert "-t ghcr.io/someone/gpu-analytics-processor:sha-1a2b3c4 ." in proc.stdout
    assert "-t ghcr.io/gpu-analytics/gpu-analytics-producer:sha-1a2b3c4 ." in proc.stdout


def test_missing_pins_a_missing_cluster_and_bad_arguments_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "kustomization.yaml"
    empty.write_text("resources: []\n")
    proc = run("--dry-run", PIPELINE_KUSTOMIZATION=str(empty))
    assert proc.returncode == 1 and "were not found" in proc.stderr
    assert run("--push").returncode == 2
    k3d = tmp_path / "k3d"
    k3d.write_text("#!/bin/sh\nexit 1\n")  # `k3d cluster get` of a cluster that is not there
    k3d.chmod(0o755)
    proc = run(K3D=str(k3d), DOCKER="/bin/true")
    assert proc.returncode == 1 and "no k3d cluster gpu-analytics" in proc.stderr
    assert "+ " not in proc.stdout  # nothing built
