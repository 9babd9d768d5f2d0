"""The tooling's commands, added to the product's `gpu-analytics` console script through the
`gpu_analytics.cli` entry point (pyproject.toml): the local stack, the cluster simulation, the
cluster verbs, the dashboards, the observability check, `dev`."""

from __future__ import annotations

from typing import Annotated

import typer

from gpu_analytics_tools.cluster.cli import app as cluster_app
from gpu_analytics_tools.cluster_sim.cli import app as cluster_sim_app
from gpu_analytics_tools.observability.cli import app as dashboards_app
from gpu_analytics_tools.stack.cli import app as stack_app


def verify_observability(
    render: Annotated[
        str | None, typer.Option(help="Also draw the dashboards into PNGs in this folder.")
    ] = None,
    linger: Annotated[float, typer.Option(help="Seconds to run on before drawing.")] = 0,
) -> None:
    """Check every rule and dashboard query on a real Prometheus scraping the pipeline."""
    from gpu_analytics_tools.observability.cli import verify_observability as run

    run(render, linger)


def dev() -> None:
    """Run the whole pipeline locally (stack, processor, producer, Prometheus); Ctrl-C stops."""
    from gpu_analytics_tools.stack.dev import run_dev

    raise typer.Exit(run_dev())


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack")
    app.add_typer(cluster_sim_app, name="cluster-sim")
    app.add_typer(cluster_app, name="cluster")
    app.add_typer(dashboards_app, name="dashboards")
    app.command("verify-observability")(verify_observability)
    app.command()(dev)
