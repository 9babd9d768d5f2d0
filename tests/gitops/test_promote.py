"""scripts/promote.sh, promotion's one edit (promote.yml by hand, images.yml on every push to
main): on a temporary copy of clusters/ it changes the two newTag lines of one cluster and
nothing else, repeats as a no-op, and refuses an unknown cluster or a malformed tag with a
clear message, a non-zero exit and the tree untouched."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "promote.sh"
KUSTOMIZE = REPO / ".tools" / "bin" / "kustomize"
OURS = {"processor", "producer"}
TAG = "sha-1a2b3c4"


def promote(root: Path, *args: str, kustomize: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"KUSTOMIZE", "GITHUB_OUTPUT"}}
    env["PROMOTE_ROOT"] = str(root)
    if kustomize:
        env["KUSTOMIZE"] = str(KUSTOMIZE)
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False
    )


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes (clusters/ holds images too)."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def image_tags(kustomization: Path) -> dict[str, str]:
    doc = yaml.safe_load(kustomization.read_text())
    return {image["name"].rsplit("-", 1)[-1]: image["newTag"] for image in doc["images"]}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """clusters/ copied into an empty repository root (plus services/deploy, which the pipeline
    kustomization builds on, for the render check)."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "clusters", root / "clusters")
    shutil.copytree(REPO / "services" / "deploy", root / "services" / "deploy")
    return root


@pytest.mark.parametrize("cluster", ["local", "aws"])
def test_sets_both_tags_and_changes_nothing_else(tree: Path, cluster: str) -> None:
    before = snapshot(tree)
    result = promote(tree, cluster, TAG)
    assert result.returncode == 0, result.stderr
    assert f"{cluster}: gpu-analytics-processor and gpu-analytics-producer -> {TAG}" in (
        result.stdout
    )

    after = snapshot(tree)
    name = f"clusters/{cluster}/pipeline/kustomization.yaml"
    assert {k for k in after if after[k] != before.get(k)} == {name}
    assert after.keys() == before.keys()
    assert set(image_tags(tree / name)) == OURS
    assert set(image_tags(tree / name).values()) == {TAG}
    # Line by line: only the two newTag lines differ, each now the quoted tag.
    old, new = before[name].decode().splitlines(), after[name].decode().splitlines()
    assert len(old) == len(new)
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert len(changed) == 2
    for a, b in changed:
        assert a.split("newTag:")[0] == b.split("newTag:")[0]
        assert b.strip() == f'newTag: "{TAG}"'


def test_second_run_is_a_no_op(tree: Path) -> None:
    assert promote(tree, "local", "0.2.0").returncode == 0
    before = snapshot(tree)
    result = promote(tree, "local", "0.2.0")
    assert result.returncode == 0, result.stderr
    assert "already runs 0.2.0" in result.stdout
    assert snapshot(tree) == before


def test_writes_changed_to_github_output(tree: Path, tmp_path: Path) -> None:
    output = tmp_path / "github_output"
    env = {**os.environ, "PROMOTE_ROOT": str(tree), "GITHUB_OUTPUT": str(output)}
    env.pop("KUSTOMIZE", None)
    for _ in range(2):
        subprocess.run(["bash", str(SCRIPT), "local", TAG], env=env, check=True)
    assert output.read_text().splitlines() == ["changed=true", "changed=false"]


def test_kustomize_renders_both_images_at_the_tag(tree: Path) -> None:
    if not KUSTOMIZE.is_file():
        pytest.skip("no .tools/bin/kustomize: run make setup")
    result = promote(tree, "local", TAG, kustomize=True)
    assert result.returncode == 0, result.stderr
    assert f"renders both images at {TAG}" in result.stdout


def test_unknown_cluster_fails_clearly_and_changes_nothing(tree: Path) -> None:
    before = snapshot(tree)
    result = promote(tree, "staging", TAG)
    assert result.returncode == 2
    assert "unknown cluster 'staging'" in result.stderr
    assert "clusters: aws local" in result.stderr
    assert snapshot(tree) == before


@pytest.mark.parametrize("cluster", ["../clusters/local", "local/", ""])
def test_cluster_names_outside_clusters_are_refused(tree: Path, cluster: str) -> None:
    result = promote(tree, cluster, TAG)
    assert result.returncode == 2
    assert "unknown cluster" in result.stderr


@pytest.mark.parametrize("tag", ["latest", "v0.2.0", "sha-XYZ1234", "sha-1a2b3c", "0.2"])
def test_malformed_tag_fails_and_changes_nothing(tree: Path, tag: str) -> None:
    before = snapshot(tree)
    result = promote(tree, "local", tag)
    assert result.returncode == 2
    assert f"tag '{tag}' is neither" in result.stderr
    assert snapshot(tree) == before


def test_wrong_argument_count_prints_usage(tree: Path) -> None:
    result = promote(tree, "local")
    assert result.returncode == 2
    assert "usage: scripts/promote.sh <cluster> <tag>" in result.stderr


def test_kustomization_without_our_images_fails_and_is_kept(tree: Path) -> None:
    name = tree / "clusters" / "local" / "pipeline" / "kustomization.yaml"
    text = name.read_text().replace("gpu-analytics-producer", "someone-elses-producer")
    name.write_text(text)
    result = promote(tree, "local", TAG)
    assert result.returncode == 1
    assert "expected 2 newTag lines, found 1" in result.stderr
    assert name.read_text() == text
