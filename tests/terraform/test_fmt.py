"""`terraform fmt -check -recursive` over terraform/ (works offline)."""

from __future__ import annotations

from pathlib import Path

from .helpers import TERRAFORM_DIR, copy_terraform_tree, run, terraform_env


def test_terraform_fmt_is_clean(terraform_bin: Path) -> None:
    result = run(
        [terraform_bin, "fmt", "-check", "-recursive", "-diff", "-no-color"],
        cwd=TERRAFORM_DIR,
        env=terraform_env(),
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform/`:\n{result.stdout}"


def test_terraform_fmt_check_flags_a_misformatted_file(terraform_bin: Path, tmp_path: Path) -> None:
    tree = copy_terraform_tree(tmp_path)
    versions = tree / "modules/network/versions.tf"
    versions.write_text(
        versions.read_text().replace('source  = "hashicorp/aws"', 'source="hashicorp/aws"')
    )

    result = run(
        [terraform_bin, "fmt", "-check", "-recursive", "-no-color"],
        cwd=tree,
        env=terraform_env(),
    )

    assert result.returncode != 0
    assert "modules/network/versions.tf" in result.stdout
