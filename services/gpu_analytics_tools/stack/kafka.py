"""An Apache Kafka broker in KRaft combined mode (broker + controller in one JVM), from the jars
that `make setup` copies from Maven Central: the same release as the cluster's image."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from aiokafka.client import AIOKafkaClient

from gpu_analytics_tools.stack.paths import kafka_libs_dir, repo_root, tools_dir
from gpu_analytics_tools.stack.process import port_open

# Sized for a laptop or a 2-core CI machine; one partition per topic unless a test asks for more.
_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data_dir}
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
"""

_LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.console.ref = console
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.state.name = state.change.logger
logger.state.level = WARN
"""


class KafkaSetupError(RuntimeError):
    pass


def java_binary() -> str:
    if java_home := os.environ.get("JAVA_HOME"):
        candidate = Path(java_home) / "bin" / "java"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("java")
    if not found:
        raise KafkaSetupError("java not found: install a JDK 17+ or set JAVA_HOME")
    return found


def classpath() -> str:
    libs = kafka_libs_dir()
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise KafkaSetupError(f"no Kafka jars in {libs}: run `make setup` first")
    return f"{libs}/*"


def jmx_agent() -> Path | None:
    """The Prometheus JMX exporter agent `make setup` copies from Maven Central (the release
    the cluster's brokers load), None when it is not there."""
    jar = Path(
        os.environ.get(
            "KAFKA_JMX_AGENT", tools_dir() / "kafka" / "agent" / "jmx_prometheus_javaagent.jar"
        )
    )
    return jar if jar.is_file() else None


# What the agent publishes: the cluster's file, so local rules and dashboards see the same.
JMX_EXPORTER_CONFIG = Path("platform/kafka/base/jmx-exporter.yaml")


def new_cluster_id() -> str:
    """Kafka's cluster ids are a UUID in URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaBroker:
    def __init__(
        self,
        *,
        home: Path,
        host: str,
        port: int,
        controller_port: int,
        metrics_port: int | None = None,
    ) -> None:
        self.home = home
        self.host = host
        self.port = port
        self.controller_port = controller_port
        self.metrics_port = metrics_port
        self.log_file = home / "kafka.log"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def metrics_address(self) -> str | None:
        """host:port of the broker's JMX exporter, None when it runs without one."""
        if self.metrics_port is None or jmx_agent() is None:
            return None
        return f"{self.host}:{self.metrics_port}"

    def _agent(self) -> list[str]:
        """The JVM option that loads the JMX exporter agent, as in the cluster's brokers."""
        jar = jmx_agent()
        if self.metrics_port is None or jar is None:
            return []
        config = repo_root() / JMX_EXPORTER_CONFIG
        return [f"-javaagent:{jar}={self.host}:{self.metrics_port}:{config}"]

    def prepare(self) -> list[str]:
        """Write the configuration, format the storage once, return the broker command."""
        data_dir = self.home / "data"
        config = self.home / "server.properties"
        log_config = self.home / "log4j2.properties"
        self.home.mkdir(parents=True, exist_ok=True)
        config.write_text(
            _SERVER_PROPERTIES.format(
                host=self.host,
                port=self.port,
                controller_port=self.controller_port,
                data_dir=data_dir,
            )
        )
        log_config.write_text(_LOG4J2_PROPERTIES.format(level="INFO"))
        java = java_binary()
        jvm = [java, f"-Dlog4j2.configurationFile={log_config}", "-cp", classpath()]
        if not (data_dir / "meta.properties").exists():
            cluster_id_file = self.home / "cluster-id"
            if not cluster_id_file.exists():
                cluster_id_file.write_text(new_cluster_id())
            fmt = subprocess.run(
                [
                    *jvm,
                    "-Xmx256m",
                    "kafka.tools.StorageTool",
                    "format",
                    "--ignore-formatted",
                    # One token: an id may start with "-" (1 in 64 do), which as a separate
                    # argument the tool's parser takes for an option.
                    f"--cluster-id={cluster_id_file.read_text().strip()}",
                    "-c",
                    str(config),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise KafkaSetupError(f"formatting Kafka storage failed:\n{fmt.stderr}{fmt.stdout}")
        heap = os.environ.get("KAFKA_HEAP", "768m")
        return [
            *jvm,
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            *self._agent(),
            "kafka.Kafka",
            str(config),
        ]

    def answers_metadata(self) -> bool:
        """True once the broker answers a metadata request with itself as a live broker."""
        if not port_open(self.host, self.port):
            return False
        return asyncio.run(_metadata_ok(self.bootstrap_servers))


async def _metadata_ok(bootstrap_servers: str) -> bool:
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=2000)
    # A broker that is still starting refuses connections; that is expected here, not news.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False
    finally:
        await client.close()
        logging.getLogger("aiokafka").setLevel(logging.NOTSET)
