"""The product alone, as services/Dockerfile installs it: the files its COPY lines copy and its
`uv sync` commands, run here into a fresh environment (Docker cannot run here; the commands
are read from the Dockerfile, so the test follows it). In that environment both services
import and start their CLI, `gpu-analytics` has the product's commands only, the tooling is
absent, and the installed distributions are exactly the lock's runtime closure of the product."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.markers import Marker

REPO = Path(__file__).resolve().parents[2]
UV = REPO / ".tools" / "bin" / "uv"
DOCKERFILE = REPO / "services" / "Dockerfile"


def build_stage(text: str) -> str:
    """The Dockerfile's `build` stage, its continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    stage = re.search(r"^FROM \S+ AS build$(.*?)^FROM ", joined, re.M | re.S)
    assert stage, "services/Dockerfile has no build stage"
    return stage.group(1)


def copies(stage: str) -> list[tuple[list[str], str]]:
    found = re.findall(r"^COPY (?!--from)(.+)$", stage, re.M)
    return [(line.split()[:-1], line.split()[-1]) for line in found]


def syncs(stage: str) -> list[list[str]]:
    return [line.split() for line in re.findall(r"\b(uv sync [^\n]+)", stage)]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Dockerfile's build stage replayed in a temporary /src; returns the environment."""
    src = tmp_path_factory.mktemp("src")
    venv = src.parent / "opt-venv"
    stage = build_stage(DOCKERFILE.read_text())
    for sources, dest in copies(stage):
        for source in sources:  # Docker's rules: a folder's contents go into dest
            if (REPO / source).is_dir():
                shutil.copytree(
                    REPO / source, src / dest, ignore=shutil.ignore_patterns("__pycache__")
                )
                continue
            target = src / dest / (Path(source).name if dest.endswith("/") else "")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / source, target)
    commands = syncs(stage)
    assert len(commands) == 2, commands
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "0",
           "UV_PYTHON": "python3.11", "UV_LINK_MODE": "copy"}  # fmt: skip
    env.pop("VIRTUAL_ENV", None)
    for command in commands:
        proc = subprocess.run(
            [str(UV), *command[1:]], cwd=src, env=env, capture_output=True, text=True,
            timeout=600, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"{' '.join(command)}:\n{proc.stderr}"
    return venv


def run(venv: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), env={"PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": str(venv), **env},
        cwd=venv, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_copied_sources_are_the_product_alone() -> None:
    copied = [s for sources, _ in copies(build_stage(DOCKERFILE.read_text())) for s in sources]
    assert "services/gpu_analytics/" in copied
    assert not [s for s in copied if "tools" in s or s.rstrip("/") == "services"]


def test_both_services_import_and_the_console_script_has_the_product_commands(
    image: Path,
) -> None:
    proc = run(
        image, "python", "-c", "import gpu_analytics.processor.app, gpu_analytics.producer.service"
    )
    assert proc.returncode == 0, proc.stderr
    helped = run(image, "gpu-analytics", "--help")
    assert helped.returncode == 0, helped.stderr
    commands = re.findall(r"^│ (\w[\w-]*) ", helped.stdout, re.M)
    assert sorted(commands) == ["dlq", "processor", "producer"]
    once = run(image, "gpu-analytics", "producer", "--once", PRODUCER_SOURCE="synthetic")
    assert once.returncode == 0, once.stderr
    assert json.loads(once.stdout.splitlines()[0])["gpu_uuid"]
    tooling = run(image, "python", "-c", "import gpu_analytics_tools")
    assert "No module named 'gpu_analytics_tools'" in tooling.stderr


def test_the_installed_distributions_are_the_locks_runtime_closure(image: Path) -> None:
    listed = subprocess.run(
        [str(UV), "pip", "list", "--python", str(image / "bin" / "python"), "--format", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed)}
    exported = subprocess.run(
        [str(UV), "export", "--frozen", "--package", "gpu-analytics", "--no-dev",
         "--no-emit-workspace", "--no-hashes", "--no-header", "--no-annotate"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    locked = set()
    for line in filter(None, exported.splitlines()):
        requirement, _, marker = line.partition(";")
        if not marker or Marker(marker).evaluate():  # e.g. colorama: Windows only
            locked.add(re.split(r"[=\[ ]", requirement, maxsplit=1)[0].lower())
    assert installed - {"gpu-analytics"} == locked
    for tool in ("gpu-analytics-tools", "matplotlib", "grafana-foundation-sdk", "secantusdb",
                 "pytest", "locust", "psutil", "httpx"):  # fmt: skip
        assert tool not in installed, tool
