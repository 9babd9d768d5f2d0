"""Every relative link in the repository's Markdown files points to a file or folder that is
there (anchors are not checked; web links are not followed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# [text](target) and ![alt](target), the target up to a space or the closing parenthesis
LINK = re.compile(r"!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")


def markdown_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [REPO / line for line in out.splitlines() if (REPO / line).exists()]


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
