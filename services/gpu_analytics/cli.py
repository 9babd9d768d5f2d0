"""The `gpu-analytics` console script: one entry point, one subcommand per service."""

from __future__ import annotations

import typer

from gpu_analytics.stack.cli import app as stack_app

app = typer.Typer(
    help="GPU and LLM-token telemetry pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack_app, name="stack")
