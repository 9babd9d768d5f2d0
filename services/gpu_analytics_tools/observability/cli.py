"""`gpu-analytics dashboards build|check` (and `render`, PNGs from a running Prometheus)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Grafana dashboards (Grafana Foundation SDK).", no_args_is_help=True)


@app.command()
def build() -> None:
    """Write monitoring/dashboards/*.json and its kustomization from the dashboard code."""
    from gpu_analytics_tools.observability.dashboards.build import write

    for path in write():
        typer.echo(f"wrote {path}")


@app.command()
def check() -> None:
    """Exit 1 if a committed dashboard file is not what the code generates."""
    from gpu_analytics_tools.observability.dashboards.build import stale

    if names := stale():
        typer.echo(f"out of date: {', '.join(names)}; run `make dashboards`", err=True)
        raise typer.Exit(1)
    typer.echo("dashboards are current")


def verify_observability(render_to: str | None = None, linger_s: float = 0) -> None:
    """Start a stack, the pipeline and Prometheus; check every rule and dashboard query."""
    import tempfile
    from pathlib import Path

    from gpu_analytics_tools.observability.verify import verify
    from gpu_analytics_tools.stack.stack import private_stack

    def say(message: str) -> None:
        typer.echo(f"verify-observability: {message}", err=True)

    with tempfile.TemporaryDirectory(prefix="verify-observability-") as tmp:
        say("starting Kafka and the MongoDB-wire server")
        with private_stack(Path(tmp) / "stack") as env:
            report = verify(
                env.bootstrap_servers,
                env.mongodb_uri,
                Path(tmp),
                kafka_metrics=env.local.kafka.metrics_address if env.local else None,
                progress=say,
                render_to=Path(render_to) if render_to else None,
                linger_s=linger_s,
            )
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def render(
    prometheus: str = typer.Option("http://127.0.0.1:9090", help="Prometheus to query."),
    out: str = typer.Option(".cache/dashboards", help="Folder for the PNG files."),
    minutes: float = typer.Option(30, help="Time range, ending now."),
) -> None:
    """Draw each dashboard's Prometheus panels into a PNG (matplotlib), e.g. during make dev."""
    from pathlib import Path

    from gpu_analytics_tools.observability.dashboards.render import render as draw

    for path in draw(prometheus, Path(out), minutes):
        typer.echo(f"wrote {path}")
