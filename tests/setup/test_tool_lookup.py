"""The one rule for finding a tool, in Python (gpu_analytics_tools.tools) and in the shell
(clusters/local/tools.sh): the variable that names it, else the checkout's .tools/bin, else
PATH; the same answers from both, on stand-in tools in temporary folders."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gpu_analytics_tools.tools import ToolMissingError, find, require

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A checkout's .tools/bin with `both`, a PATH folder with `both` and `path-only`."""
    places = {"bin": tmp_path / "checkout" / ".tools" / "bin", "path": tmp_path / "on-path"}
    for folder, names in ((places["bin"], ["both"]), (places["path"], ["both", "path-only"])):
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_text("#!/bin/sh\n")
            (folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{places['path']}:/usr/bin:/bin")
    monkeypatch.delenv("STANDIN", raising=False)
    return places


def shell_tool(layout: dict[str, Path], *args: str, **env: str) -> str:
    checkout = layout["bin"].parent.parent
    script = f"root={checkout}; . {REPO}/clusters/local/tools.sh; tool {' '.join(args)}"
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, timeout=10,
        env={"PATH": f"{layout['path']}:/usr/bin:/bin", **env},
    ).stdout.strip()  # fmt: skip


def test_checkout_first_then_path_then_nothing(layout: dict[str, Path]) -> None:
    assert find("both", "STANDIN", folder=layout["bin"]) == str(layout["bin"] / "both")
    assert find("path-only", "STANDIN", folder=layout["bin"]) == str(layout["path"] / "path-only")
    assert find("path-only", folder=layout["bin"], path=False) is None
    assert find("absent", folder=layout["bin"]) is None
    with pytest.raises(ToolMissingError, match="absent not found: run make setup.* or set STANDIN"):
        require("absent", "STANDIN", folder=layout["bin"])
    assert shell_tool(layout, "STANDIN", "both") == str(layout["bin"] / "both")
    assert shell_tool(layout, "STANDIN", "path-only") == str(layout["path"] / "path-only")
    assert shell_tool(layout, "STANDIN", "absent") == "absent"


def test_the_variable_wins_and_must_name_something_executable(
    layout: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = str(layout["path"] / "path-only")
    monkeypatch.setenv("STANDIN", chosen)
    assert find("both", "STANDIN", folder=layout["bin"]) == chosen
    assert shell_tool(layout, "STANDIN", "both", STANDIN=chosen) == chosen
    monkeypatch.setenv("STANDIN", "path-only")  # a name: looked up on PATH
    assert find("both", "STANDIN", folder=layout["bin"]) == chosen
    monkeypatch.setenv("STANDIN", str(layout["path"] / "gone"))
    with pytest.raises(ToolMissingError, match="STANDIN=.*gone is not an executable file"):
        find("both", "STANDIN", folder=layout["bin"])
