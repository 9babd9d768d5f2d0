"""Our Grafana dashboards, written with the Grafana Foundation SDK and generated to JSON in
monitoring/dashboards/ (`make dashboards`; a test checks the committed JSON is current)."""

from __future__ import annotations

from gpu_analytics_tools.observability.dashboards import gpus, logs, pipeline, tokens, waste
from gpu_analytics_tools.observability.dashboards.common import Board

# file name (without .json) -> dashboard builder
BOARDS: dict[str, Board] = {
    "pipeline": pipeline.board,
    "gpu-fleet": gpus.board,
    "tokens-cost": tokens.board,
    "gpu-cost-waste": waste.board,
    "logs": logs.board,
}
