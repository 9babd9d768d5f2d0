"""The conventions of terraform/: module layout, documented inputs and outputs, pins."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .helpers import TERRAFORM_DIR, blocks

MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
MODULES = sorted(p for p in (TERRAFORM_DIR / "modules").iterdir() if p.is_dir())
ROOT_AND_MODULES = [TERRAFORM_DIR, *MODULES]


def top_level_arguments(body: str) -> set[str]:
    """Argument names at the first nesting level of a block body (two-space indent)."""
    return set(re.findall(r"^  ([a-z_]+)\s*=", body, re.M))


def module_id(path: Path) -> str:
    return str(path.relative_to(TERRAFORM_DIR.parent))


@pytest.mark.parametrize("module", ROOT_AND_MODULES, ids=module_id)
def test_module_has_the_standard_files(module: Path) -> None:
    missing = [f for f in MODULE_FILES if not (module / f).is_file()]
    assert not missing, f"{module_id(module)} lacks {missing}"


@pytest.mark.parametrize("module", ROOT_AND_MODULES, ids=module_id)
def test_every_variable_has_description_type_and_default(module: Path) -> None:
    variables = blocks((module / "variables.tf").read_text(), "variable")
    assert variables
    for name, body in variables.items():
        missing = {"description", "type", "default"} - top_level_arguments(body)
        assert not missing, f"{module_id(module)}: variable {name} lacks {sorted(missing)}"


@pytest.mark.parametrize("module", ROOT_AND_MODULES, ids=module_id)
def test_every_output_has_a_description(module: Path) -> None:
    outputs = blocks((module / "outputs.tf").read_text(), "output")
    assert outputs
    for name, body in outputs.items():
        assert "description" in top_level_arguments(body), f"output {name} has no description"


@pytest.mark.parametrize("module", ROOT_AND_MODULES, ids=module_id)
def test_readme_reference_lists_every_input_and_output(module: Path) -> None:
    readme = (module / "README.md").read_text()
    match = re.search(r"<!-- BEGIN_TF_DOCS -->(.*)<!-- END_TF_DOCS -->", readme, re.S)
    assert match, f"{module_id(module)}/README.md has no BEGIN_TF_DOCS/END_TF_DOCS section"
    reference = match.group(1)
    names = [
        *blocks((module / "variables.tf").read_text(), "variable"),
        *blocks((module / "outputs.tf").read_text(), "output"),
    ]
    undocumented = [n for n in names if f"`{n}`" not in reference]
    assert not undocumented, f"{module_id(module)}/README.md does not list {undocumented}"


@pytest.mark.parametrize("module", ROOT_AND_MODULES, ids=module_id)
def test_provider_versions_are_pessimistic_pins(module: Path) -> None:
    text = (module / "versions.tf").read_text()
    versions = re.findall(r'^\s*version\s*=\s*"([^"]*)"', text, re.M)
    required = re.findall(r'^\s*required_version\s*=\s*"([^"]*)"', text, re.M)

    assert required and all(v.startswith("~> ") for v in required)
    assert all(v.startswith("~> ") for v in versions), versions


def test_one_k3s_release_everywhere() -> None:
    releases = {
        (str(path.relative_to(TERRAFORM_DIR)), release)
        for path in TERRAFORM_DIR.rglob("*")
        if path.is_file() and path.suffix in {".tf", ".md", ".example"}
        for release in re.findall(r"v1\.\d+\.\d+\+k3s\d+", path.read_text())
    }
    assert len({r for _, r in releases}) == 1, sorted(releases)


def test_no_ssh_key_pairs() -> None:
    """Nodes are reached through SSM Session Manager only."""
    for path in TERRAFORM_DIR.rglob("*.tf"):
        text = path.read_text()
        assert "key_name" not in text, path
        assert "aws_key_pair" not in text, path
