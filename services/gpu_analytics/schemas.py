"""JSON Schemas of the events, generated from the pydantic models into services/schemas/.

python -m gpu_analytics.schemas          # rewrite the files
python -m gpu_analytics.schemas --check  # exit 1 when a file is stale (run by the tests)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gpu_analytics.events import GpuMetric, LegacyGpuMetric, LegacyTokenUsage, TokenUsage

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"

MODELS: dict[str, type[BaseModel]] = {
    "gpu.metrics.v1.json": GpuMetric,
    "token.usage.v1.json": TokenUsage,
    "gpu.metrics.legacy.json": LegacyGpuMetric,
    "token.usage.legacy.json": LegacyTokenUsage,
}


def render(model: type[BaseModel], filename: str) -> str:
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": filename,
        **model.model_json_schema(mode="validation"),
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a file is stale")
    args = parser.parse_args(argv)
    stale = []
    SCHEMA_DIR.mkdir(exist_ok=True)
    for filename, model in MODELS.items():
        path, text = SCHEMA_DIR / filename, render(model, filename)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(filename)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        sys.stderr.write(f"stale: {', '.join(stale)}; run python -m gpu_analytics.schemas\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
