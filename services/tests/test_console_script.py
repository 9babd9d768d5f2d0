"""`gpu-analytics`: a service's command starts without importing the tooling, even where the
tooling is installed (a checkout); any other command or --help sees the tooling's commands."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
sys.argv = ["gpu-analytics", *sys.argv[1:]]
from gpu_analytics.cli import main
try:
    main()
except SystemExit:
    pass
print(sorted(m for m in sys.modules if m.startswith("gpu_analytics_tools")))
"""


def run(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=60,
        check=True,
    ).stdout  # fmt: skip


def test_a_service_command_imports_no_tooling() -> None:
    for command in ("producer", "processor", "dlq"):
        assert run(command, "--help").splitlines()[-1] == "[]", command


def test_help_lists_the_tooling_commands_where_it_is_installed() -> None:
    out = run("--help")
    for command in ("producer", "processor", "dlq", "dev", "stack", "cluster-sim", "cluster"):
        assert f"│ {command} " in out, command
    assert out.splitlines()[-1] != "[]"
