"""`gpu-analytics dlq replay --topic T [--since] [--dry-run]` (MONGODB_URI, MONGODB_DB and
KAFKA_BOOTSTRAP_SERVERS as for the processor)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer

app = typer.Typer(help="Dead letters: replay them to their source topic.", no_args_is_help=True)


@app.command("replay")
def replay_cmd(
    topic: Annotated[str, typer.Option(help="The source topic, e.g. gpu.metrics.v1.")],
    since: Annotated[
        datetime | None, typer.Option(help="Only those dead-lettered at or after (ISO-8601).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, publish nothing.")] = False,
) -> None:
    """Re-publish each dead letter of TOPIC not replayed yet, at most once."""
    from gpu_analytics.config import ProcessorSettings
    from gpu_analytics.processor.replay import replay

    if since is not None and since.tzinfo is None:
        raise typer.BadParameter("give --since with a timezone, e.g. 2026-12-01T10:00:00Z")
    topic = topic.removesuffix(".dlq")

    def say(message: str) -> None:
        typer.echo(f"dlq: {message}", err=True)

    count = asyncio.run(
        replay(ProcessorSettings(), topic=topic, since=since, dry_run=dry_run, say=say)
    )
    typer.echo(f"{'would replay' if dry_run else 'replayed'} {count} dead letters to {topic}")
