"""The `gpu-analytics` console script: one subcommand per service (`producer`, `processor`) and
the dead-letter replay (`dlq`). Where the tooling package is installed (a checkout after
`make dev` or `make setup`, never an image), its commands join through the `gpu_analytics.cli`
entry points: `stack`, `cluster-sim`, `cluster`, `dashboards`, `verify-observability`, `dev`."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Annotated

import typer

from gpu_analytics.processor.dlq_cli import app as dlq_app

app = typer.Typer(
    help="GPU and LLM-token telemetry pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
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


SERVICES = {"producer", "processor", "dlq"}


def main() -> None:
    """The console script. A service's own command starts without importing the tooling; any
    other (or --help) first lets each `gpu_analytics.cli` entry point add its commands."""
    if len(sys.argv) < 2 or sys.argv[1] not in SERVICES:
        for plugin in entry_points(group="gpu_analytics.cli"):
            plugin.load()(app)
    app()
