"""The `gpu-analytics` console script: one entry point, one subcommand per service."""

from __future__ import annotations

from typing import Annotated

import typer

from gpu_analytics.cluster.cli import app as cluster_app
from gpu_analytics.cluster_sim.cli import app as cluster_sim_app
from gpu_analytics.observability.cli import app as dashboards_app
from gpu_analytics.processor.dlq_cli import app as dlq_app
from gpu_analytics.stack.cli import app as stack_app

app = typer.Typer(
    help="GPU and LLM-token telemetry pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack_app, name="stack")
app.add_typer(cluster_sim_app, name="cluster-sim")
app.add_typer(cluster_app, name="cluster")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(dlq_app, name="dlq")


@app.command()
def producer(
    source: Annotated[
        str | None,
        typer.Option(help="auto | nvml | synthetic (default: PRODUCER_SOURCE, else auto)"),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Print one event as JSON and exit (no Kafka).")
    ] = False,
) -> None:
    """Publish GPU telemetry (NVML or a synthetic fleet) and token usage to Kafka."""
    from gpu_analytics.producer.service import run_producer

    raise typer.Exit(run_producer(source=source, once=once))


@app.command()
def processor() -> None:
    """Serve the HTTP API on :8080 and consume both topics into MongoDB."""
    from gpu_analytics.processor.main import serve

    raise typer.Exit(serve())


@app.command("verify-observability")
def verify_observability(
    render: Annotated[
        str | None, typer.Option(help="Also draw the dashboards into PNGs in this folder.")
    ] = None,
    linger: Annotated[float, typer.Option(help="Seconds to run on before drawing.")] = 0,
) -> None:
    """Check every rule and dashboard query on a real Prometheus scraping the pipeline."""
    from gpu_analytics.observability.cli import verify_observability as run

    run(render, linger)


@app.command()
def dev() -> None:
    """Run the whole pipeline locally (stack, processor, producer, Prometheus); Ctrl-C stops."""
    from gpu_analytics.stack.dev import run_dev

    raise typer.Exit(run_dev())
