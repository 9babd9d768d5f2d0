"""`gpu-analytics cluster-sim up|down|status`: the simulated cluster for a person and for
tests/cluster (whose session fixture calls `start` and `stop` below)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from gpu_analytics_tools.cluster_sim import gitrepo
from gpu_analytics_tools.cluster_sim.layout import (
    BRANCH,
    GIT_URL,
    Layout,
    SimState,
    default_state_dir,
    install_path,
    missing_tools,
    ui_server,
)
from gpu_analytics_tools.stack.paths import repo_root, tools_dir
from gpu_analytics_tools.stack.process import log_tail

app = typer.Typer(
    help="A Kubernetes API server, controllers, kwok nodes and Argo CD on loopback.",
    no_args_is_help=True,
)


class SimError(RuntimeError):
    pass


@dataclass(frozen=True)
class Sim:
    """A running simulation, as `start` returns it."""

    layout: Layout
    state: SimState
    commit: str

    def env(self) -> dict[str, str]:
        """What kubectl and the argocd CLI on the host need to reach it."""
        return {
            "KUBECONFIG": str(self.layout.kubeconfig),
            "ARGOCD_SERVER": f"127.0.0.1:{self.state.argocd_port}",
            "ARGOCD_OPTS": f"--plaintext --config {self.layout.argocd_config}",
        }


def _progress(message: str) -> None:
    typer.echo(f"cluster-sim: {message}", err=True)


def running(state_dir: Path) -> SimState | None:
    state = SimState.load(state_dir)
    if state is None or state.supervisor is None:
        return None
    return state if state.supervisor.alive() else None


def start(
    state_dir: Path,
    *,
    source: Path | None = None,
    revision: str = gitrepo.WORKTREE,
    charts_dir: Path | None = None,
    ui: bool = False,
    api_port: int = 0,
    argocd_port: int = 0,
    timeout: float = 240.0,
    owner_pid: int | None = None,
) -> Sim:
    """Serve `revision` of `source` and start the simulation's supervisor, detached."""
    if missing := missing_tools():
        raise SimError(f"missing {', '.join(missing)} in {tools_dir() / 'bin'}: run `make setup`")
    if ui and not ui_server().exists():
        raise SimError(f"the Argo CD UI is not built ({ui_server()}): run `make argocd-ui`")
    if os.geteuid() != 0:
        raise SimError("the simulation needs root: it runs in a network namespace of its own")
    if running(state_dir) is not None:
        raise SimError(
            f"a simulation is already running from {state_dir}: `cluster-sim down` first"
        )
    layout = Layout(state_dir)
    layout.reset()
    source = source or repo_root()
    _progress(f"serving {revision} of {source} as {GIT_URL} (branch {BRANCH})")
    commit = gitrepo.prepare(
        source, revision, layout.bare_repo, layout.checkout, charts=charts_dir is not None
    )
    argv = [
        sys.executable, "-m", "gpu_analytics_tools.cluster_sim.supervisor",
        f"--state-dir={state_dir}", f"--api-port={api_port}", f"--argocd-port={argocd_port}",
        f"--helmchart={layout.checkout / 'bootstrap' / 'argo-cd' / 'helmchart.yaml'}",
    ]  # fmt: skip
    if charts_dir is not None:
        argv.append(f"--charts-dir={charts_dir.resolve()}")
    if ui:
        argv.append("--ui")
    if owner_pid is not None:
        argv.append(f"--owner-pid={owner_pid}")
    log_file = layout.logs / "supervisor.log"
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=repo_root(),
        )  # fmt: skip
    _progress("starting etcd, kube-apiserver, controller-manager, scheduler, kwok, Argo CD")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = SimState.load(state_dir)
        if state is not None and state.ready:
            return Sim(layout, state, commit)
        if proc.poll() is not None or (state is not None and state.error):
            raise SimError(
                f"the simulation did not start: {state.error if state else 'supervisor exited'}\n"
                f"{log_tail(log_file)}"
            )
        time.sleep(0.5)
    stop(state_dir)
    raise SimError(f"the simulation was not ready after {timeout:.0f}s\n{log_tail(log_file)}")


def stop(state_dir: Path, timeout: float = 60.0) -> list[str]:
    """Stop the supervisor (which stops its children); return the names of any child still
    alive afterwards, which are then killed."""
    state = SimState.load(state_dir)
    if state is None or state.supervisor is None:
        return []
    state.supervisor.stop(timeout)
    left = []
    for name, ref in state.children.items():
        if ref.alive():
            left.append(name)
            ref.stop(5)
    return left


StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", envvar="CLUSTER_SIM_STATE_DIR", help="Default: .cache/cluster-sim."
    ),
]


@app.command()
def up(
    revision: Annotated[
        str, typer.Option(help="The commit Argo CD syncs (default: the working tree as it is).")
    ] = gitrepo.WORKTREE,
    charts_dir: Annotated[
        Path | None,
        typer.Option(envvar="CHARTS_DIR", help="Packaged charts (<name>-<version>.tgz) to serve."),
    ] = None,
    ui: Annotated[
        bool, typer.Option("--ui", help="Serve the Argo CD web UI (built by `make argocd-ui`).")
    ] = False,
    api_port: Annotated[int, typer.Option(help="Host port of the API server (0: any).")] = 0,
    argocd_port: Annotated[int, typer.Option(help="Host port of argocd-server (0: any).")] = 0,
    state_dir: StateDir = None,
) -> None:
    """Start the simulation in the background and print how to reach it."""
    state_dir = state_dir or default_state_dir()
    try:
        sim = start(
            state_dir, revision=revision, charts_dir=charts_dir, ui=ui, api_port=api_port,
            argocd_port=argocd_port,
        )  # fmt: skip
    except SimError as exc:
        _progress(str(exc))
        raise typer.Exit(1) from exc
    for key, value in sim.env().items():
        typer.echo(f"export {key}={value!r}" if " " in value else f"export {key}={value}")
    _progress(
        f"Argo CD syncs {GIT_URL} branch {BRANCH} ({sim.commit[:12]}); "
        f"checkout: {sim.layout.checkout}"
    )
    _progress(
        f"install the tree: (cd {sim.layout.checkout} && "
        f"PATH={install_path()}:$PATH clusters/local/install.sh)"
    )
    if ui:
        _progress(f"Argo CD UI: http://127.0.0.1:{sim.state.argocd_port}/applications (no login)")
    _progress(f"logs: {sim.layout.logs}; stop: gpu-analytics cluster-sim down")


@app.command()
def down(state_dir: StateDir = None) -> None:
    """Stop the simulation and everything it started."""
    state_dir = state_dir or default_state_dir()
    if running(state_dir) is None:
        _progress("not running")
        return
    left = stop(state_dir)
    if left:
        _progress(f"killed what outlived the supervisor: {', '.join(left)}")
    _progress("stopped")


@app.command()
def status(state_dir: StateDir = None) -> None:
    """Say whether the simulation runs, and its components' pids."""
    state_dir = state_dir or default_state_dir()
    state = running(state_dir)
    if state is None:
        _progress("not running")
        raise typer.Exit(1)
    assert state.supervisor is not None  # running() checked it
    typer.echo(f"supervisor pid {state.supervisor.pid}, ready={state.ready}")
    for name, ref in state.children.items():
        typer.echo(f"  {name:32} pid {ref.pid:<8} {'running' if ref.alive() else 'exited'}")
    sim = Sim(Layout(state_dir), state, "")
    for key, value in sim.env().items():
        typer.echo(f"export {key}={value!r}" if " " in value else f"export {key}={value}")
