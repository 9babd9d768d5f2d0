"""`terraform validate`: needs the providers, which only a registry (or a mirror) supplies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .helpers import TERRAFORM_DIR, copy_terraform_tree, run, terraform_env

# What `terraform init` prints when it cannot download providers.
UNREACHABLE = (
    "could not connect to",
    "Failed to query available provider packages",
    "Failed to install provider",
    "no such host",
)


def init(terraform_bin: Path, directory: Path) -> None:
    """`terraform init -backend=false`, skipping the test when no provider source answers."""
    result = run(
        [terraform_bin, "init", "-backend=false", "-input=false", "-no-color"],
        cwd=directory,
        env=terraform_env(),
        timeout=600,
    )
    if result.returncode != 0 and any(s in result.stderr for s in UNREACHABLE):
        first_error = next(
            (line.strip() for line in result.stderr.splitlines() if line.startswith("Error")),
            "registry unreachable",
        )
        pytest.skip(
            "terraform validate needs hashicorp/aws and hashicorp/random from the Terraform "
            f"registry or a provider mirror (TF_CLI_CONFIG_FILE), unreachable here: {first_error}"
        )
    assert result.returncode == 0, result.stderr


def test_terraform_validate_root(terraform_bin: Path, tmp_path: Path) -> None:
    tree = copy_terraform_tree(tmp_path)
    # The root reads the bootstrap manifests and External Secrets' store from the repository
    # above terraform/.
    for repo_path in ("bootstrap", "clusters", "platform"):
        source = TERRAFORM_DIR.parent / repo_path
        if source.is_dir():
            shutil.copytree(source, tmp_path / repo_path)

    init(terraform_bin, tree)
    result = run([terraform_bin, "validate", "-no-color"], cwd=tree, env=terraform_env())

    assert result.returncode == 0, result.stderr + result.stdout


def test_terraform_validate_cloud_init_module_offline(terraform_bin: Path, tmp_path: Path) -> None:
    """The provider-free module validates without any registry."""
    module = copy_terraform_tree(tmp_path) / "modules/k3s-cloud-init"
    env = terraform_env()

    assert (
        run([terraform_bin, "init", "-input=false", "-no-color"], cwd=module, env=env).returncode
        == 0
    )
    result = run([terraform_bin, "validate", "-no-color"], cwd=module, env=env)

    assert result.returncode == 0, result.stderr + result.stdout
