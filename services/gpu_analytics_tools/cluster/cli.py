"""`gpu-analytics cluster status|wait`: every Application with sync, health, wave and the
first failing condition, through the argocd CLI. `cluster demo-hpa`: the Locust HPA demo
against the cluster, recorded (gpu_analytics_tools.cluster.hpa_demo)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from gpu_analytics_tools.cluster.apps import AppStatus, ArgocdError, list_apps, table

app = typer.Typer(
    help="A cluster's Applications, through the argocd CLI; the HPA demo.", no_args_is_help=True
)


def _say(message: str) -> None:
    typer.echo(f"cluster: {message}", err=True)


@app.command()
def status() -> None:
    """Print every Application; exit 1 unless all are Synced and Healthy."""
    try:
        apps = list_apps()
    except ArgocdError as exc:
        _say(str(exc))
        raise typer.Exit(2) from exc
    typer.echo(table(apps))
    raise typer.Exit(0 if apps and all(a.done for a in apps) else 1)


@app.command("install-manifests")
def install_manifests_cmd(
    repo_url: Annotated[
        str | None, typer.Option(help="Git source for the tree (default: the root's own).")
    ] = None,
    revision: Annotated[
        str | None, typer.Option(help="Branch, tag or commit (default: the root's own).")
    ] = None,
) -> None:
    """Read a built cluster tree on stdin; print the objects to apply at install (the root and
    its AppProjects), moved to --repo-url at --revision when given."""
    import sys

    import yaml

    from gpu_analytics_tools.cluster.source import install_manifests

    try:
        docs = install_manifests(yaml.safe_load_all(sys.stdin), repo_url, revision)
    except (ValueError, yaml.YAMLError) as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from exc
    typer.echo(yaml.safe_dump_all(docs, sort_keys=False), nl=False)


@app.command()
def wait(
    timeout: Annotated[float, typer.Option(help="Seconds before giving up.")] = 1200.0,
    root: Annotated[str, typer.Option(help="The app of apps, which must exist.")] = "root",
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 5.0,
) -> None:
    """Wait until every Application is Synced and Healthy; print the table when it changes.
    On timeout, exit 1 naming what blocks."""
    deadline = time.monotonic() + timeout
    start = time.monotonic()
    last: list[AppStatus] | None = None
    apps: list[AppStatus] = []
    while True:
        try:
            apps = list_apps()
        except ArgocdError as exc:
            _say(f"{exc} (retrying)")
            apps = []
        if apps != last and apps:
            done = sum(a.done for a in apps)
            _say(f"{time.monotonic() - start:.0f}s: {done}/{len(apps)} Synced and Healthy")
            typer.echo(table(apps))
            last = apps
        names = {a.name for a in apps}
        if root in names and all(a.done for a in apps):
            _say(f"all {len(apps)} Applications are Synced and Healthy")
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    blocking = [a for a in apps if not a.done]
    if root not in {a.name for a in apps}:
        _say(f"timed out after {timeout:.0f}s: Application {root} does not exist")
    else:
        _say(f"timed out after {timeout:.0f}s; blocking: " + "; ".join(
            f"{a.name} ({a.sync}/{a.health}{': ' + a.problem if a.problem else ''})"
            for a in blocking
        ))  # fmt: skip
    raise typer.Exit(1)


@app.command("demo-hpa")
def demo_hpa(
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: .cache/demo-hpa/<UTC time>/).")
    ] = None,
    namespace: Annotated[str, typer.Option(help="Namespace of the pipeline.")] = "pipeline",
    interval: Annotated[float, typer.Option(help="Seconds between polls of the HPA.")] = 10.0,
    context: Annotated[
        str | None, typer.Option(help="Kube context (default: the current one).")
    ] = None,
    hpa: Annotated[str, typer.Option(help="The HPA to record.")] = "processor",
    settle: Annotated[
        float, typer.Option(help="Seconds after the load to wait for the HPA's minimum.")
    ] = 900.0,
    locustfile: Annotated[
        str | None, typer.Option(help="Locust -f (default: loadtest/, the HpaDemo shape).")
    ] = None,
) -> None:
    """Port-forward the processor, run the Locust HpaDemo shape headless, poll the HPA and its
    Deployment; write timeline.csv, summary.txt/.json and replicas.png. Exit 1 naming what
    failed (also when the HPA never reported CPU), 130 on Ctrl-C (after writing the report)."""
    from gpu_analytics_tools.cluster.hpa_demo import runner

    options = runner.DemoOptions(
        out=(out or runner.default_out()).resolve(),
        namespace=namespace,
        hpa=hpa,
        interval=interval,
        settle=settle,
        context=context,
        locustfile=locustfile or "",
    )
    raise typer.Exit(runner.run_demo(options, lambda message: _say(f"demo-hpa: {message}")))


@app.command()
def verify(
    context: Annotated[
        str | None, typer.Option(help="Kube context (default: the current one).")
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between the two reads.")] = 20.0,
    events: Annotated[int, typer.Option(min=1, help="GPU samples the smoke sends.")] = 100,
    smoke_timeout: Annotated[
        float, typer.Option(help="Seconds the smoke waits for its samples to be stored.")
    ] = 180.0,
    lag_slack: Annotated[
        float, typer.Option(help="A consumer lag at most this many records passes even if it grew.")
    ] = 1000.0,
    log_dir: Annotated[
        Path | None, typer.Option(help="Where the port-forward logs go (default: a temp dir).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the checks; touch nothing.")
    ] = False,
) -> None:
    """Check the pipeline on a kube context: Kafka, MongoDB, processor and producers ready;
    events stored, producers sending and consumer lag not growing between two reads; an
    end-to-end smoke through the ingest API. One PASS/FAIL line per check; exit 1 on a FAIL."""
    import tempfile

    from gpu_analytics_tools.cluster import verify as checks
    from gpu_analytics_tools.cluster.kube import Kubectl, KubeError, find_kubectl
    from gpu_analytics_tools.cluster.verdicts import PIPELINE

    options = checks.Options(interval, events, smoke_timeout, lag_slack)
    if dry_run:
        typer.echo("\n".join(checks.plan(options)))
        return
    try:
        kubectl = Kubectl(find_kubectl(), PIPELINE, context)
    except KubeError as exc:
        _say(f"verify: {exc}")
        raise typer.Exit(2) from exc
    with tempfile.TemporaryDirectory(prefix="verify-") as temp:
        logs = log_dir or Path(temp)
        logs.mkdir(parents=True, exist_ok=True)
        cluster = checks.KubectlCluster(kubectl, logs)
        passed = checks.Verify(cluster, options, typer.echo).run()
    _say(f"verify: {'every check passed' if passed else 'a check failed'}")
    raise typer.Exit(0 if passed else 1)
