"""The one launcher of the pipeline's processes on this machine: the processor, a producer and,
where `make setup` built it, Prometheus scraping both with our rules and the targets labelled as
the ServiceMonitors label them in the cluster. `make dev`, verify-observability and the test
harness start their services through it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gpu_analytics_tools.observability.prometheus import write_config
from gpu_analytics_tools.stack.process import spawn, stop_child
from gpu_analytics_tools.tools import find

HOST = "127.0.0.1"


def cli() -> str:
    """The `gpu-analytics` console script of the environment running this code (beside its
    interpreter), else the one on PATH."""
    beside = Path(sys.executable).with_name("gpu-analytics")
    return str(beside) if beside.is_file() else shutil.which("gpu-analytics") or str(beside)


def prometheus_binary() -> str | None:
    """Prometheus at the cluster's release, as `make setup` builds it (never one from PATH)."""
    return find("prometheus", path=False)


def start_service(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`gpu-analytics <name>` (processor or producer) with `env`, its output in `log`."""
    return spawn([cli(), name], log, cwd=log.parent, env=env)


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class LocalPipeline:
    """The processor on `processor_port`, a producer with /metrics on `producer_port` and, with a
    `prometheus_port`, Prometheus scraping both (and the broker's `kafka_metrics`) every
    `scrape`; logs and data under `state`."""

    state: Path
    env: dict[str, str]  # the services' settings: Kafka, MongoDB, topics, producer rate, ...
    processor_port: int
    producer_port: int
    prometheus_port: int | None = None
    scrape: str = "5s"
    # host:port of the broker's JMX exporter, scraped as the cluster's kafka-metrics job
    kafka_metrics: str | None = None
    services: list[Service] = field(default_factory=list)

    @property
    def processor_url(self) -> str:
        return f"http://{HOST}:{self.processor_port}"

    @property
    def producer_url(self) -> str:
        return f"http://{HOST}:{self.producer_port}"

    @property
    def prometheus_url(self) -> str | None:
        return None if self.prometheus_port is None else f"http://{HOST}:{self.prometheus_port}"

    def start(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        env = {
            **self.env,
            "HTTP_HOST": HOST,
            "HTTP_PORT": str(self.processor_port),
            "METRICS_HOST": HOST,
            "METRICS_PORT": str(self.producer_port),
        }
        for name in ("processor", "producer"):
            log = self.state / f"{name}.log"
            self.services.append(Service(name, start_service(name, env, log), log))
        if self.prometheus_port is not None:
            binary = prometheus_binary()
            if binary is None:
                raise FileNotFoundError("prometheus not found in .tools/bin: run `make setup`")
            targets = {"processor": f"{HOST}:{self.processor_port}"}
            targets["producer"] = f"{HOST}:{self.producer_port}"
            if self.kafka_metrics is not None:
                targets["kafka-metrics"] = self.kafka_metrics
            config = write_config(self.state, targets, interval=self.scrape)
            cmd = [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.state / 'prometheus-data'}",
                f"--web.listen-address={HOST}:{self.prometheus_port}",
            ]
            log = self.state / "prometheus.log"
            self.services.append(Service("prometheus", spawn(cmd, log, cwd=self.state), log))

    def exited(self) -> list[Service]:
        return [s for s in self.services if s.proc.poll() is not None]

    def stop(self, timeout: float = 30) -> None:
        """In reverse order: Prometheus, the producer (it flushes), then the processor."""
        for service in reversed(self.services):
            stop_child(service.proc, timeout)
        self.services.clear()
