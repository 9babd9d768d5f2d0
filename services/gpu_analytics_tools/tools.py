"""The one rule for finding a command-line tool: the environment variable that names it, else
the build `make setup` installed into the checkout (.tools/bin), else the tool on PATH.
clusters/local/tools.sh is the same rule for the shell scripts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gpu_analytics_tools.stack.paths import tools_dir


class ToolMissingError(RuntimeError):
    """A tool that is not there, with what to do about it."""


def find(
    name: str, env: str | None = None, *, folder: Path | None = None, path: bool = True
) -> str | None:
    """`$env` when set (a path, or a name looked up on PATH), else `folder/name` (default
    .tools/bin) when executable, else `name` on PATH when `path`; None when none is there.
    A variable that names nothing executable is an error, not a fallback."""
    if env and (configured := os.environ.get(env)):
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        if found := shutil.which(configured):
            return found
        raise ToolMissingError(f"{env}={configured} is not an executable file")
    local = (folder or tools_dir() / "bin") / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name) if path else None


def require(
    name: str, env: str | None = None, *, folder: Path | None = None, path: bool = True
) -> str:
    """find(), or ToolMissingError saying how to get it."""
    found = find(name, env, folder=folder, path=path)
    if found is None:
        where = "run make setup" + (", put it on PATH" if path else "")
        raise ToolMissingError(f"{name} not found: {where}" + (f" or set {env}" if env else ""))
    return found
