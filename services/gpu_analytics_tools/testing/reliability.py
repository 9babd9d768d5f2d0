"""The reliability figures: each outage scenario's test appends one row (RELIABILITY_REPORT
names the JSON-lines file), and `make reliability` prints them as the README's table:

    python -m gpu_analytics_tools.testing.reliability .cache/reliability.jsonl
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

COLUMNS = ("scenario", "sent", "stored", "duplicates ignored", "dead letters", "stats figure")


def record(**row: Any) -> None:
    """Append a row when RELIABILITY_REPORT is set (make reliability); a no-op otherwise."""
    target = os.environ.get("RELIABILITY_REPORT")
    if target:
        with Path(target).open("a") as out:
            out.write(json.dumps(row) + "\n")


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else ".cache/reliability.jsonl")
    if not path.exists():
        sys.stderr.write(f"reliability: no figures in {path}\n")
        return 1
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    sys.stdout.write(table(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
