"""The process that is the simulation: it binds the host-side ports, moves into a network
namespace of its own, starts every component in order (each waits for the one before to
answer), runs the K3s stand-ins and the forwarders, and on SIGTERM stops what it started,
in reverse order. `gpu-analytics cluster-sim up` starts it detached; see cli.py.

    python -m gpu_analytics_tools.cluster_sim.supervisor --state-dir DIR \
        --api-port N --argocd-port N

Over 400 lines because the start order is one sequence in one place (etcd, the API server,
the controllers, kwok, the charts, Argo CD, the operators), each step waiting on the one
before; what each component needs is in the modules beside it (argocd.py, operators.py,
builtins.py, pki.py, netns.py, layout.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psutil
import yaml

from gpu_analytics_tools.cluster_sim import argocd, builtins, netns, operators
from gpu_analytics_tools.cluster_sim.kube import (
    ApiError,
    Endpoint,
    KubeClient,
    Obj,
    write_kubeconfig,
)
from gpu_analytics_tools.cluster_sim.layout import (
    API_PORT,
    ARGOCD_SERVER_PORT,
    CHARTS_PORT,
    CONTROLLER_METRICS_PORT,
    ETCD_PEER_PORT,
    ETCD_PORT,
    GIT_PORT,
    KCM_PORT,
    KWOK_PORT,
    NOTIFICATIONS_METRICS_PORT,
    PROMETHEUS_OPERATOR_PORT,
    RECEIVER_PORT,
    RECEIVER_SOCKET,
    REDIS_PORT,
    REPO_SERVER_PORT,
    SCHEDULER_PORT,
    SERVICE_CIDR,
    Layout,
    SimState,
    kubernetes_version,
    tool,
    ui_server,
)
from gpu_analytics_tools.cluster_sim.pki import Pki, make_pki
from gpu_analytics_tools.stack.paths import tools_dir
from gpu_analytics_tools.stack.process import ProcessRef, port_open, spawn, stop_child

log = logging.getLogger("cluster-sim")


class StartError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_file: Path


@dataclass
class Supervisor:
    layout: Layout
    api_port: int
    argocd_port: int
    charts_dir: Path | None
    ui: bool = False  # argocd-server with the web UI embedded (layout.ui_server)
    owner: psutil.Process | None = None
    children: list[Child] = field(default_factory=list)
    state: SimState = field(default_factory=SimState)

    # ---- processes ------------------------------------------------------------------------

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        log_file = self.layout.logs / f"{name}.log"
        proc = spawn(argv, log_file, self.layout.root, env or self.base_env(), die_with_parent=True)
        child = Child(name, proc, log_file)
        self.children.append(child)
        self.state.children[name] = ProcessRef.of(proc.pid)
        self.state.save(self.layout.root)
        log.info("started %s (pid %d)", name, proc.pid)
        return child

    def wait_for(self, child: Child, check: Callable[[], bool], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise StartError(
                    f"{child.name} exited with {child.proc.returncode}: see {child.log_file}"
                )
            with contextlib.suppress(Exception):
                if check():
                    log.info("%s is ready", child.name)
                    return
            time.sleep(0.3)
        raise StartError(f"{child.name} not ready after {timeout:.0f}s: see {child.log_file}")

    def stop_all(self) -> None:
        """Stop the children one by one, newest first (the API server before etcd), each
        with SIGTERM and, after 10 s, SIGKILL."""
        for child in reversed(self.children):
            stop_child(child.proc, 10)
            log.info("stopped %s", child.name)

    def base_env(self) -> dict[str, str]:
        path = f"{self.layout.bin}:{tools_dir() / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        return {"PATH": path, "HOME": str(self.layout.root / "home"), "LANG": "C.UTF-8"}

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [str(tool("kubectl")), f"--kubeconfig={self.layout.inner_kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StartError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def apply(self, objs: list[Obj]) -> None:
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                     stdin=yaml.safe_dump_all(objs))  # fmt: skip

    # ---- the control plane ----------------------------------------------------------------

    def start_control_plane(self) -> KubeClient:
        layout = self.layout
        pki = make_pki(layout.pki)
        inner = Endpoint("127.0.0.1", API_PORT, pki)
        write_kubeconfig(layout.inner_kubeconfig, inner)
        write_kubeconfig(layout.argocd_kubeconfig, inner, namespace=argocd.NAMESPACE)
        write_kubeconfig(layout.kubeconfig, Endpoint("127.0.0.1", self.api_port, pki))

        etcd = self.spawn("etcd", [
            str(tool("etcd")), "--name=sim", f"--data-dir={layout.root / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{ETCD_PORT}",
            f"--advertise-client-urls=http://127.0.0.1:{ETCD_PORT}",
            f"--listen-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}",
            f"--initial-cluster=sim=http://127.0.0.1:{ETCD_PEER_PORT}",
            "--unsafe-no-fsync", "--log-level=warn", "--listen-metrics-urls=",
        ])  # fmt: skip
        self.wait_for(etcd, lambda: b"true" in urllib.request.urlopen(
            f"http://127.0.0.1:{ETCD_PORT}/health", timeout=2).read())  # fmt: skip

        apiserver = self.spawn("kube-apiserver", [
            str(tool("kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{ETCD_PORT}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={API_PORT}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--tls-cert-file={pki.cert('apiserver')}",
            f"--tls-private-key-file={pki.key('apiserver')}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            # The kubernetes Service's endpoint would be 127.0.0.1, which Endpoints reject.
            "--endpoint-reconciler-type=none",
            "--profiling=false", "--v=1",
        ])  # fmt: skip
        client = KubeClient(inner)
        self.wait_for(apiserver, client.ready, timeout=120)

        common = [f"--kubeconfig={layout.inner_kubeconfig}", "--leader-elect=false",
                  "--bind-address=127.0.0.1", "--profiling=false"]  # fmt: skip
        kcm = self.spawn("kube-controller-manager", [
            str(tool("kube-controller-manager")), *common, f"--secure-port={KCM_PORT}",
            f"--service-account-private-key-file={pki.sa_key}", f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--use-service-account-credentials=false",
            "--horizontal-pod-autoscaler-sync-period=10s",
            f"--authentication-kubeconfig={layout.inner_kubeconfig}",
            f"--authorization-kubeconfig={layout.inner_kubeconfig}",
        ])  # fmt: skip
        scheduler = self.spawn("kube-scheduler", [
            str(tool("kube-scheduler")), *common, f"--secure-port={SCHEDULER_PORT}",
            f"--authentication-kubeconfig={layout.inner_kubeconfig}",
            f"--authorization-kubeconfig={layout.inner_kubeconfig}",
        ])  # fmt: skip
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        for child, port in ((kcm, KCM_PORT), (scheduler, SCHEDULER_PORT)):
            self.wait_for(child, partial(self._healthz, port, insecure))
        return client

    @staticmethod
    def _healthz(port: int, ctx: ssl.SSLContext) -> bool:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=2
        ) as r:
            return bool(r.read() == b"ok")

    def start_nodes(self, client: KubeClient) -> None:
        self.apply(builtins.NODES)
        stages = sorted((tools_dir() / "kwok" / "stages").glob("*.yaml"))
        if not stages:
            raise StartError("kwok stages missing in .tools/kwok/stages: run `make setup`")
        config = self.layout.root / "kwok.yaml"
        config.write_text("\n---\n".join(p.read_text() for p in stages))
        kwok = self.spawn("kwok", [
            str(tool("kwok")), f"--kubeconfig={self.layout.inner_kubeconfig}", f"--config={config}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-lease-duration-seconds=40", "--cidr=10.42.0.0/16", "--node-ip=10.42.0.1",
            f"--server-address=127.0.0.1:{KWOK_PORT}",
        ])  # fmt: skip

        def nodes_ready() -> bool:
            items = client.get("/api/v1/nodes").get("items", [])
            ready = [
                node
                for node in items
                for cond in node["status"].get("conditions", [])
                if cond["type"] == "Ready" and cond["status"] == "True"
            ]
            return len(ready) == len(builtins.NODES)

        self.wait_for(kwok, nodes_ready)

    def install_builtins(self, client: KubeClient) -> None:
        crds = list(builtins.K3S_CRDS)
        if self.charts_dir is None:
            crds += builtins.MONITORING_CRDS
        crds += [
            doc
            for path in sorted((tools_dir() / "argocd" / "crds").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text())
            if doc
        ]
        self.apply(crds + builtins.STORAGE)
        names = {c["metadata"]["name"] for c in crds}
        deadline = time.monotonic() + 60
        while True:  # (kubectl wait fails on a CRD whose conditions are not written yet)
            items = client.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
            established = {
                c["metadata"]["name"]
                for c in items
                for cond in (c.get("status") or {}).get("conditions") or []
                if cond["type"] == "Established" and cond["status"] == "True"
            }
            if names <= established:
                return
            if time.monotonic() > deadline:
                raise StartError(f"CRDs not established: {sorted(names - established)}")
            time.sleep(0.5)

    # ---- Argo CD and its git and chart sources --------------------------------------------

    def start_sources(self) -> None:
        git_daemon = self.spawn("git-daemon", [
            "git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
            f"--port={GIT_PORT}", f"--base-path={self.layout.git}", str(self.layout.git),
        ])  # fmt: skip
        self.wait_for(git_daemon, lambda: port_open("127.0.0.1", GIT_PORT))
        if self.charts_dir is not None:
            index = subprocess.run(
                [str(tool("helm")), "repo", "index", str(self.charts_dir)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if index.returncode != 0:
                raise StartError(f"helm repo index {self.charts_dir}: {index.stderr.strip()}")
            handler = partial(_QuietHandler, directory=str(self.charts_dir))
            server = http.server.ThreadingHTTPServer(("127.0.0.1", CHARTS_PORT), handler)
            threading.Thread(target=server.serve_forever, daemon=True, name="charts").start()
            log.info("chart repository %s on port %d", self.charts_dir, CHARTS_PORT)

    def start_argocd(self, helmchart: Path) -> None:
        layout = self.layout
        values = argocd.chart_values(helmchart)
        self.apply([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": argocd.NAMESPACE}},
        ])  # fmt: skip
        archive = argocd.chart_archive(self.charts_dir, helmchart)
        if archive is not None:
            self.apply(argocd.rendered_settings(
                tool("helm"), archive, helmchart, kubernetes_version(),
                layout.root / "argo-cd-chart",
            ))  # fmt: skip
            log.info(
                "Argo CD settings as %s renders them with the HelmChart's values", archive.name
            )
        else:
            self.apply(argocd.settings(values))
            log.warning(
                "Argo CD settings from the HelmChart's values only (%s): the chart's defaults, "
                "such as its ignoreResourceUpdates rules, are missing",
                "no CHARTS_DIR" if self.charts_dir is None else "its chart is not in CHARTS_DIR",
            )
        wrapper = layout.bin / "git-verify-wrapper.sh"
        wrapper.write_text(argocd.GIT_VERIFY_WRAPPER)
        wrapper.chmod(0o755)
        for sub in ("home", "tmp"):
            (layout.root / sub).mkdir(exist_ok=True)
        env = argocd.env(
            layout.argocd_kubeconfig, f"127.0.0.1:{REDIS_PORT}", layout.root / "home",
            self.base_env()["PATH"], layout.root / "tmp",
        )  # fmt: skip
        redis = self.spawn("redis", [
            str(tool("redis-server")), "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
        ])  # fmt: skip
        self.wait_for(redis, lambda: port_open("127.0.0.1", REDIS_PORT))
        argocd_bin = tools_dir() / "bin"
        repo = self.spawn("argocd-repo-server", [
            str(argocd_bin / "argocd-repo-server"), f"--port={REPO_SERVER_PORT}",
            "--metrics-port=8084", "--disable-tls", "--client-ca-path=", "--loglevel=info",
        ], env)  # fmt: skip
        self.wait_for(repo, lambda: port_open("127.0.0.1", REPO_SERVER_PORT))
        repo_addr = f"127.0.0.1:{REPO_SERVER_PORT}"
        controller = self.spawn("argocd-application-controller", [
            str(argocd_bin / "argocd-application-controller"), f"--repo-server={repo_addr}",
            "--repo-server-plaintext", f"--metrics-port={CONTROLLER_METRICS_PORT}",
            "--loglevel=info", "--status-processors=4", "--operation-processors=4",
            "--self-heal-timeout-seconds=5",
        ], env)  # fmt: skip
        self.wait_for(controller, lambda: port_open("127.0.0.1", CONTROLLER_METRICS_PORT))
        # The argocd CLI (and a browser, with --ui) talks to argocd-server; on loopback,
        # inside this namespace, without authentication (the host reaches it only through the
        # forwarder on 127.0.0.1).
        server_bin = ui_server() if self.ui else argocd_bin / "argocd-server"
        server = self.spawn("argocd-server", [
            str(server_bin), "--insecure", f"--port={ARGOCD_SERVER_PORT}",
            "--address=127.0.0.1", "--metrics-port=8083", f"--repo-server={repo_addr}",
            "--repo-server-plaintext", "--disable-auth", "--loglevel=info", "--dex-server=",
        ], env)  # fmt: skip
        self.wait_for(server, lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{ARGOCD_SERVER_PORT}/healthz", timeout=2).status == 200)  # fmt: skip
        if argocd.notifications_enabled(values):
            notifications = self.spawn("argocd-notifications", [
                str(argocd_bin / "argocd-notifications"), f"--argocd-repo-server={repo_addr}",
                "--argocd-repo-server-plaintext", f"--metrics-port={NOTIFICATIONS_METRICS_PORT}",
                "--loglevel=info",
            ], env)  # fmt: skip
            self.wait_for(notifications, lambda: port_open("127.0.0.1", NOTIFICATIONS_METRICS_PORT))

    # ---- chart controllers (operators.py) -------------------------------------------------

    def start_chart_operator(self, client: KubeClient) -> bool:
        """Start the Prometheus Operator once the chart's Deployment of it exists; True
        when it runs."""
        try:
            found = operators.chart_operator(client.get("/apis/apps/v1/deployments"))
        except (OSError, ApiError) as exc:
            log.debug("cannot list Deployments yet: %s", exc)
            return False
        if found is None:
            return False
        where, chart_args = found
        binary = tool("prometheus-operator")
        chart_args, unknown = operators.split_known(chart_args, operators.binary_flags(binary))
        if unknown:
            log.warning("prometheus-operator: left out the chart's %s (unknown to this build)",
                        " ".join(unknown))  # fmt: skip
        pki = Pki(self.layout.pki)
        argv = operators.operator_argv(
            binary, chart_args, f"https://127.0.0.1:{API_PORT}",
            pki.ca_cert, pki.cert("admin"), pki.key("admin"), PROMETHEUS_OPERATOR_PORT,
        )  # fmt: skip
        operator = self.spawn("prometheus-operator", argv)
        log.info("prometheus-operator runs with the arguments of Deployment %s", where)
        self.wait_for(operator, lambda: port_open("127.0.0.1", PROMETHEUS_OPERATOR_PORT))
        return True

    # ---- main -----------------------------------------------------------------------------

    def run(self, helmchart: Path, listeners: dict[str, object]) -> int:
        stop = asyncio.Event()
        try:
            client = self.start_control_plane()
            self.install_builtins(client)
            self.start_nodes(client)
            self.start_sources()
            self.start_argocd(helmchart)
        except Exception as exc:  # every start failure ends the simulation it began
            log.error("start failed: %s", exc)
            self.state.error = str(exc)
            self.state.save(self.layout.root)
            self.stop_all()
            return 1

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            servers = [
                await netns.forward(listeners["api"], API_PORT),  # type: ignore[arg-type]
                await netns.forward(listeners["argocd"], ARGOCD_SERVER_PORT),  # type: ignore[arg-type]
                await netns.forward_to_unix(RECEIVER_PORT, self.layout.root / RECEIVER_SOCKET),
            ]
            provisioner = asyncio.create_task(builtins.LocalPathProvisioner(client).run())
            self.state.ready = True
            self.state.save(self.layout.root)
            log.info("ready: API server on 127.0.0.1:%d, argocd-server on 127.0.0.1:%d",
                     self.api_port, self.argocd_port)  # fmt: skip
            operator_running = self.charts_dir is None  # no charts: no operator to run
            while not stop.is_set():
                await asyncio.wait([asyncio.ensure_future(stop.wait())], timeout=5)
                if not operator_running:
                    try:
                        operator_running = await asyncio.to_thread(
                            self.start_chart_operator, client
                        )
                    except StartError as exc:
                        log.error("%s", exc)
                        self.state.error = str(exc)
                        self.state.save(self.layout.root)
                        stop.set()
                if self.owner is not None and not self.owner.is_running():
                    log.info("owner process %d is gone: stopping", self.owner.pid)
                    stop.set()
                for child in self.children:
                    if child.proc.poll() is not None:
                        log.error(
                            "%s exited with %s: see %s",
                            child.name,
                            child.proc.returncode,
                            child.log_file,
                        )
                        self.state.error = f"{child.name} exited"
                        self.state.save(self.layout.root)
                        stop.set()
            provisioner.cancel()
            for server in servers:
                server.close()

        asyncio.run(main())
        self.stop_all()
        return 1 if self.state.error else 0


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("charts: " + format, *args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--api-port", type=int, default=0)
    parser.add_argument("--argocd-port", type=int, default=0)
    parser.add_argument("--charts-dir", type=Path)
    parser.add_argument("--ui", action="store_true", help="serve the Argo CD web UI")
    parser.add_argument("--helmchart", type=Path, required=True, help="the argo-cd HelmChart")
    parser.add_argument(
        "--owner-pid", type=int, help="stop when this process ends (a test session)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout,
        format='{"ts": "%(asctime)s", "level": "%(levelname)s", "msg": %(message)r}',
    )  # fmt: skip
    layout = Layout(args.state_dir)
    # Host side first: these two sockets stay in the host's namespace after the move.
    listeners = {
        "api": netns.bind_listener(args.api_port),
        "argocd": netns.bind_listener(args.argocd_port),
    }
    sup = Supervisor(
        layout,
        api_port=listeners["api"].getsockname()[1],
        argocd_port=listeners["argocd"].getsockname()[1],
        charts_dir=args.charts_dir,
        ui=args.ui,
        owner=psutil.Process(args.owner_pid) if args.owner_pid else None,
    )
    netns.enter_new_netns()
    sup.state = SimState(
        supervisor=ProcessRef.of(os.getpid()),
        api_port=sup.api_port,
        argocd_port=sup.argocd_port,
        netns_inode=netns.netns_inode(),
    )
    sup.state.save(layout.root)
    return sup.run(args.helmchart, dict(listeners))


if __name__ == "__main__":
    os.umask(0o022)
    raise SystemExit(main())
