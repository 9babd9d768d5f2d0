"""The repository's Markdown files: every relative link points to a file or folder that is there
(anchors are not checked, web links not followed), and every mermaid diagram renders with
mermaid's own renderer (mermaid-cli driving Debian's Chromium, both from `make setup`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MMDC = REPO / ".tools" / "mermaid" / "node_modules" / ".bin" / "mmdc"
DIAGRAM = re.compile(r"^```mermaid\n(.*?)^```", re.S | re.M)
# [text](target) and ![alt](target), the target up to a space or the closing parenthesis
LINK = re.compile(r"!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")


def repo_files(*patterns: str) -> list[Path]:
    """The files git tracks or would track (untracked, not ignored), matching `patterns`."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [REPO / line for line in out.splitlines() if (REPO / line).is_file()]


def markdown_files() -> list[Path]:
    return repo_files("*.md")


def relative_links(text: str) -> list[str]:
    links, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if fenced:
            continue
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # https:, mailto:, an anchor of this page
            links.append(target)
    return links


def test_every_relative_link_resolves() -> None:
    broken = []
    files = markdown_files()
    assert len(files) > 10
    for md in files:
        for target in relative_links(md.read_text()):
            path = target.split("#", 1)[0]
            if not (md.parent / path).exists():
                broken.append(f"{md.relative_to(REPO)}: {target}")
    assert broken == []


def test_a_broken_link_is_found() -> None:
    text = "see [the guide](docs/nowhere.md) and [a site](https://example.org) [top](#top)\n"
    text += "```\n[in a code block](not/a/link.md)\n```\n"
    assert relative_links(text) == ["docs/nowhere.md"]


def render(diagram: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if not MMDC.exists():
        pytest.fail("mermaid-cli not found: run `make setup`")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium not found: run `make setup` (it installs Debian's)")
    # Our own diagrams only: the sandbox is off so that it runs as root in CI containers too.
    config = tmp_path / "puppeteer.json"
    config.write_text(json.dumps({"executablePath": chromium, "args": ["--no-sandbox"]}))
    source = tmp_path / "diagram.mmd"
    source.write_text(diagram)
    return subprocess.run(
        [str(MMDC), "-q", "-p", str(config), "-i", str(source), "-o", str(tmp_path / "out.svg")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def diagrams() -> list[tuple[str, str]]:
    return [
        (f"{md.relative_to(REPO)}#{n}", diagram)
        for md in markdown_files()
        for n, diagram in enumerate(DIAGRAM.findall(md.read_text()), 1)
    ]


@pytest.mark.parametrize(("where", "diagram"), diagrams(), ids=[w for w, _ in diagrams()])
def test_every_diagram_renders(where: str, diagram: str, tmp_path: Path) -> None:
    proc = render(diagram, tmp_path)
    assert proc.returncode == 0, f"{where}: {proc.stderr[:1500]}"
    assert (tmp_path / "out.svg").read_text().startswith("<svg")


def test_the_architecture_diagrams_are_among_those_rendered() -> None:
    """The parametrized test above passes on no diagrams at all: make sure it has some."""
    assert any(where.startswith("ARCHITECTURE.md#") for where, _ in diagrams())


def test_a_broken_diagram_fails(tmp_path: Path) -> None:
    proc = render("sequenceDiagram\n  A->>: no receiver\n  loop\n", tmp_path)
    assert proc.returncode != 0 and "Parse error" in proc.stderr


# Files outside the repository that the project must not send its readers to: its own
# README.md and ARCHITECTURE.md are the design record.
OUTSIDE = re.compile(r"\b(?:DESIGN|STYLE)\.md\b")


def outside_references(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return []  # images and other binaries
    return [
        f"{path.name}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)
    ]


def test_no_file_points_to_a_document_the_repository_does_not_hold() -> None:
    files = repo_files()
    assert len(files) > 100
    found = [ref for path in files for ref in outside_references(path)]
    assert found == []


def test_a_reference_to_an_outside_document_is_found(tmp_path: Path) -> None:
    planted = tmp_path / "main.tf"
    planted.write_text("# the cluster of " + "DESIGN" + ".md §3\nok\n")
    assert outside_references(planted) == ["main.tf:1"]


# A path in backticks that starts at a top-level folder, e.g. `services/gpu_analytics/kafka/`:
# placeholders (<name>, *, {...}, $VAR) and commands are not paths.
CODE = re.compile(r"`([^`\s]+)`")


def repo_paths(text: str) -> list[str]:
    tops = {p.name for p in REPO.iterdir()} - {".git", ".venv", ".tools", ".cache"}
    paths = [token.rstrip(".,:;)") for token in CODE.findall(text)]
    return [
        path
        for path in paths
        if "/" in path and not any(c in path for c in "<>*{}$|=#?") and path.split("/")[0] in tops
    ]


def stale_paths(text: str, here: Path) -> list[str]:
    return [p for p in repo_paths(text) if not ((REPO / p).exists() or (here / p).exists())]


def test_every_repository_path_the_docs_name_exists() -> None:
    docs = markdown_files()
    assert sum(len(repo_paths(md.read_text())) for md in docs) > 50  # the check has work
    stale = [
        f"{md.relative_to(REPO)}: {path}"
        for md in docs
        for path in stale_paths(md.read_text(), md.parent)
    ]
    assert stale == []


def test_a_path_to_a_moved_file_is_found() -> None:
    text = "see `services/gpu_analytics/stack/harness.py` and `tests/<name>/` and `make test`\n"
    assert stale_paths(text, REPO) == ["services/gpu_analytics/stack/harness.py"]
