"""The Argo CD web UI's build (scripts/argocd-ui): the parts that run without Node.js, a
browser or GitHub. The build itself, `cluster-sim up --ui` and the screenshot run by
`make argocd-ui-screenshot`, which regenerates clusters/local/argocd-applications.png."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from gpu_analytics_tools.cluster_sim import cli as sim_cli
from gpu_analytics_tools.testing.cluster_sim import REPO

USE_TARBALL = REPO / "scripts" / "argocd-ui" / "use-tarball.sh"
BUILD = REPO / "scripts" / "argocd-ui" / "build.sh"
SCREENSHOT = REPO / "scripts" / "argocd-ui" / "screenshot.sh"
WRAPPER = REPO / "scripts" / "gotools" / "argocd"
GITHUB_LINE = re.compile(
    r"^    resolution: \{tarball: https://codeload\.github\.com/argoproj/argo-ui/tar\.gz/[0-9a-f]{40}\}$",
    re.M,
)


def module_lockfile() -> Path:
    """ui/pnpm-lock.yaml of the Argo CD module the simulation's Argo CD is built from."""
    toolchain = re.search(r"^toolchain (\S+)$", (WRAPPER / "go.mod").read_text(), re.M)
    assert toolchain, "scripts/gotools/argocd/go.mod names no toolchain"
    proc = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-cd/v3"],
        cwd=WRAPPER, capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "GOTOOLCHAIN": toolchain[1], "GOFLAGS": "-mod=readonly"},
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"the Argo CD module is not in the Go module cache: {proc.stderr.strip()}")
    return Path(proc.stdout.strip()) / "ui" / "pnpm-lock.yaml"


def use_tarball(lock: Path, tarball: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(USE_TARBALL), str(lock), tarball], capture_output=True, text=True, check=False
    )


def test_the_pinned_lockfile_takes_argo_ui_from_one_tarball_we_can_replace(
    tmp_path: Path,
) -> None:
    original = module_lockfile().read_text()
    lock = tmp_path / "pnpm-lock.yaml"
    lock.write_text(original)
    proc = use_tarball(lock, "/srv/argo-ui.tgz")
    assert proc.returncode == 0, proc.stderr
    before, after = original.splitlines(), lock.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1, changed
    assert GITHUB_LINE.match(changed[0][0])
    assert changed[0][1] == "    resolution: {tarball: file:/srv/argo-ui.tgz}"


@pytest.mark.parametrize("copies", [0, 2])
def test_a_lockfile_without_exactly_one_github_tarball_is_left_alone(
    tmp_path: Path, copies: int
) -> None:
    line = (
        "    resolution: {tarball: https://codeload.github.com/argoproj/argo-ui/tar.gz/"
        + "f" * 40
        + "}\n"
    )
    text = "lockfileVersion: '9.0'\npackages:\n" + line * copies
    lock = tmp_path / "pnpm-lock.yaml"
    lock.write_text(text)
    proc = use_tarball(lock, "/srv/argo-ui.tgz")
    assert proc.returncode == 1
    assert f"found {copies}" in proc.stderr
    assert lock.read_text() == text


def test_build_refuses_a_tarball_that_is_not_there(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(BUILD)], capture_output=True, text=True, check=False, timeout=60,
        env={"PATH": "/usr/bin:/bin", "ARGO_UI_TARBALL": str(tmp_path / "missing.tgz")},
    )  # fmt: skip
    assert proc.returncode == 1
    assert "missing.tgz is not a file" in proc.stderr


def test_sim_up_with_ui_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim_cli, "missing_tools", lambda: [])
    monkeypatch.setattr(sim_cli, "ui_server", lambda: tmp_path / "argocd-server")
    with pytest.raises(sim_cli.SimError, match=r"not built .*: run `make argocd-ui`"):
        sim_cli.start(tmp_path / "state", ui=True)
    assert not (tmp_path / "state").exists()  # nothing started, nothing written


@pytest.mark.skipif(os.geteuid() != 0, reason="as non-root it stops earlier, at the root check")
def test_screenshot_refuses_a_browser_that_is_not_there(tmp_path: Path) -> None:
    state = REPO / ".cache" / "argocd-ui" / "sim" / "state.json"
    before = state.stat().st_mtime if state.exists() else None
    proc = subprocess.run(
        [str(SCREENSHOT)], capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "CHROMIUM": str(tmp_path / "chromium")},
    )  # fmt: skip
    assert proc.returncode == 1
    assert "chromium is not an executable" in proc.stderr
    assert "[1/5]" not in proc.stdout  # refused before building or starting anything
    assert (state.stat().st_mtime if state.exists() else None) == before
