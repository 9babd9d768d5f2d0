"""Shared helpers for the Terraform checks: tool lookup, subprocess runs, strict YAML."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from yaml.constructor import ConstructorError

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"

SETUP_HINT = "run `make setup`"


def find_tool(env_var: str, candidates: Sequence[Path]) -> Path | None:
    """The tool named by `env_var` if set, else the first candidate that exists."""
    override = os.environ.get(env_var)
    if override:
        return Path(override)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_tool(name: str, env_var: str, candidates: Sequence[Path]) -> Path:
    """Like find_tool, but a missing tool fails the test with the way to install it."""
    tool = find_tool(env_var, candidates)
    if tool is None or not tool.is_file():
        where = ", ".join(str(c.relative_to(REPO_ROOT)) for c in candidates)
        pytest.fail(f"{name} not found (looked at ${env_var}, {where}): {SETUP_HINT}")
    return tool


def terraform_env() -> dict[str, str]:
    """Environment for terraform: no prompts, no version checkpoint calls."""
    env = dict(os.environ)
    cli_config = env.get("TF_CLI_CONFIG_FILE")
    if cli_config and not Path(cli_config).is_file():
        # A dangling CLI config only adds a warning to every command.
        del env["TF_CLI_CONFIG_FILE"]
    env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
    return env


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Runs a command, capturing text output; never raises on a non-zero exit."""
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def copy_terraform_tree(dest: Path) -> Path:
    """Copies terraform/ (without local state or provider caches) to dest/terraform."""
    target = dest / "terraform"
    shutil.copytree(
        TERRAFORM_DIR,
        target,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.*", "*.tfvars"),
    )
    return target


def blocks(text: str, kind: str) -> dict[str, str]:
    """Top-level `kind "name" { ... }` blocks of an HCL file: name => body (strings skipped)."""
    found: dict[str, str] = {}
    for match in re.finditer(rf'^{kind} "([^"]+)" \{{', text, re.M):
        depth, i, in_string = 1, match.end(), False
        while depth:
            ch = text[i]
            if in_string:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            i += 1
        found[match.group(1)] = text[match.end() : i - 1]
    return found


ROOT_REPO_ROOT = 'repo_root = "${path.module}/.."'


def root_locals(tree: Path, workdir: Path, outputs: Sequence[str] = ()) -> None:
    """Copies the root's variables.tf and `locals` (and the named outputs) of `tree` to workdir.

    None of them needs a provider, so `terraform apply` there evaluates them offline. The
    repository files they read come from this checkout.
    """
    main = (tree / "main.tf").read_text()
    local_blocks = re.findall(r"^locals \{.*?^\}", main, flags=re.M | re.S)
    config = "\n\n".join(local_blocks)
    assert config.count(ROOT_REPO_ROOT) == 1, f"{ROOT_REPO_ROOT} not in the root's locals"
    config = config.replace(ROOT_REPO_ROOT, f"repo_root = {json.dumps(str(REPO_ROOT))}")
    assert "module." not in config, "the root's locals now use a module; update this helper"
    available = blocks((tree / "outputs.tf").read_text(), "output")
    for name in outputs:
        config += f'\n\noutput "{name}" {{{available[name]}}}\n'
    shutil.copy(tree / "variables.tf", workdir / "variables.tf")
    (workdir / "root_locals.tf").write_text(config + "\n")


class DuplicateKeyError(ConstructorError):
    """A mapping repeats a key: YAML keeps the last value and silently drops the others."""


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys at any depth (PyYAML keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise DuplicateKeyError(
                    None,
                    None,
                    f"duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_unique(text: str) -> Any:
    """Parses one YAML document, rejecting duplicate keys."""
    return yaml.load(text, Loader=UniqueKeyLoader)


def load_all_unique(text: str) -> list[Any]:
    """Parses every YAML document of a stream, rejecting duplicate keys."""
    return list(yaml.load_all(text, Loader=UniqueKeyLoader))
