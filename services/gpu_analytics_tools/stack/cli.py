"""`gpu-analytics stack up|down|status`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from gpu_analytics_tools.stack.paths import default_state_dir
from gpu_analytics_tools.stack.process import StopRequest
from gpu_analytics_tools.stack.stack import LocalStack, StackError, StackPorts
from gpu_analytics_tools.stack.topics import ensure_topics

app = typer.Typer(
    help="The local backing services (Kafka + MongoDB-wire server).", no_args_is_help=True
)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="STACK_STATE_DIR",
        help="Data, logs and pid file (default: .cache/stack in the repository).",
    ),
]


def _echo_env(stack: LocalStack) -> None:
    for key, value in stack.env().items():
        typer.echo(f"{key}={value}")


def _progress(message: str) -> None:
    typer.echo(f"stack: {message}", err=True)


@app.command()
def up(
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Return once ready; `down` stops it.")
    ] = False,
    kafka_port: Annotated[int, typer.Option(envvar="KAFKA_PORT")] = 9092,
    kafka_controller_port: Annotated[int, typer.Option(envvar="KAFKA_CONTROLLER_PORT")] = 9093,
    mongo_port: Annotated[int, typer.Option(envvar="MONGO_PORT")] = 27017,
    kafka_metrics_port: Annotated[
        int, typer.Option(envvar="KAFKA_METRICS_PORT", help="The broker's JMX exporter.")
    ] = 9404,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for both to answer.")] = 90.0,
    state_dir: StateDir = None,
) -> None:
    """Start Kafka (KRaft) and the MongoDB-wire server on 127.0.0.1 and print their addresses."""
    stack = LocalStack(
        state_dir=state_dir or default_state_dir(),
        ports=StackPorts(
            kafka=kafka_port,
            kafka_controller=kafka_controller_port,
            mongo=mongo_port,
            kafka_metrics=kafka_metrics_port,
        ),
    )
    if (running := stack.running()) is not None:
        _progress(
            f"already running (kafka pid {running.kafka.pid}, mongo pid "
            f"{running.mongo.pid}); `gpu-analytics stack down` stops it"
        )
        stack = LocalStack(state_dir=stack.state_dir, ports=running.ports)
        _echo_env(stack)
        return
    started = time.monotonic()
    try:
        state = stack.start(timeout=timeout, progress=_progress)
    except StackError as exc:
        typer.echo(f"stack: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        created = ensure_topics(stack.kafka.bootstrap_servers)
    except Exception as exc:  # noqa: BLE001 - report, stop what we started, exit non-zero
        stack.stop(state)
        typer.echo(f"stack: error: creating the declared topics failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    if created:
        _progress(f"created topics {', '.join(created)}")
    _progress(f"ready in {time.monotonic() - started:.1f}s (logs in {stack.state_dir})")
    # Handlers before the addresses go out: whoever reads them may press Ctrl-C at once.
    stop = None if detach else StopRequest()
    _echo_env(stack)
    sys.stdout.flush()
    if stop is None:
        return

    _progress("running; press Ctrl-C to stop")
    while not stop.requested and all(state.alive().values()):
        time.sleep(0.2)
    died = [name for name, ok in state.alive().items() if not ok]
    _progress("stopping")
    stack.stop(state)
    _progress("stopped")
    if died and not stop.requested:
        typer.echo(
            f"stack: error: {', '.join(died)} exited unexpectedly; "
            f"see the logs in {stack.state_dir}",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def down(state_dir: StateDir = None) -> None:
    """Stop the stack that `up --detach` started, and wait until its ports are free."""
    stack = LocalStack(state_dir=state_dir or default_state_dir())
    try:
        stopped = stack.stop()
    except StackError as exc:
        typer.echo(f"stack: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    _progress("stopped" if stopped else "nothing was running")


@app.command()
def status(state_dir: StateDir = None) -> None:
    """Say whether the detached stack runs; exit 1 when it does not (handy in scripts)."""
    stack = LocalStack(state_dir=state_dir or default_state_dir())
    state = stack.running()
    if state is None:
        typer.echo("stack: not running")
        raise typer.Exit(1)
    stack = LocalStack(state_dir=stack.state_dir, ports=state.ports)
    for name, alive in state.alive().items():
        pid = getattr(state, name).pid
        typer.echo(f"{name}: {'running' if alive else 'exited'} (pid {pid})")
    _echo_env(stack)
