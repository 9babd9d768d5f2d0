"""Where the repository keeps its local tools and state (all repo-local, all git-ignored)."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout this package was installed from (editable install), else the working dir.

    `GPU_ANALYTICS_HOME` overrides both, for a checkout used from elsewhere.
    """
    if home := os.environ.get("GPU_ANALYTICS_HOME"):
        return Path(home).resolve()
    candidate = Path(__file__).resolve().parents[3]
    if (candidate / "pyproject.toml").is_file():
        return candidate
    return Path.cwd()


def tools_dir() -> Path:
    return repo_root() / ".tools"


def kafka_libs_dir() -> Path:
    """The Kafka broker and tools jars that `make setup` copies from Maven Central."""
    return Path(os.environ.get("KAFKA_LIBS_DIR", tools_dir() / "kafka" / "libs"))


def default_state_dir() -> Path:
    """Data, logs and the pid file of the detached stack."""
    return Path(os.environ.get("STACK_STATE_DIR", repo_root() / ".cache" / "stack"))
