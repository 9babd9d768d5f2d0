"""The stack as a whole: start both servers, wait until they answer, record and stop them."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from gpu_analytics_tools.stack.kafka import KafkaBroker, KafkaSetupError
from gpu_analytics_tools.stack.mongo import MongoServer, MongoSetupError
from gpu_analytics_tools.stack.process import (
    PortInUseError,
    ProcessRef,
    ensure_port_free,
    free_port,
    log_errors,
    log_tail,
    spawn,
    wait_ports_closed,
)

HOST = "127.0.0.1"


class StackError(RuntimeError):
    """Something the user has to act on; the message says what."""


@dataclass(frozen=True)
class StackPorts:
    kafka: int = 9092
    kafka_controller: int = 9093
    mongo: int = 27017
    kafka_metrics: int = 9404  # the broker's JMX exporter, as in the cluster


@dataclass(frozen=True)
class StackState:
    """What `up --detach` leaves in the state folder so `down`/`status` find the processes."""

    ports: StackPorts
    kafka: ProcessRef
    mongo: ProcessRef

    def alive(self) -> dict[str, bool]:
        return {"kafka": self.kafka.alive(), "mongo": self.mongo.alive()}

    @classmethod
    def load(cls, path: Path) -> StackState | None:
        try:
            raw = json.loads(path.read_text())
            return cls(
                ports=StackPorts(**raw["ports"]),
                kafka=ProcessRef(**raw["kafka"]),
                mongo=ProcessRef(**raw["mongo"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))


class LocalStack:
    def __init__(self, *, state_dir: Path, ports: StackPorts | None = None) -> None:
        self.state_dir = state_dir
        self.ports = ports or StackPorts()
        self.kafka = KafkaBroker(
            home=state_dir / "kafka",
            host=HOST,
            port=self.ports.kafka,
            controller_port=self.ports.kafka_controller,
            metrics_port=self.ports.kafka_metrics,
        )
        self.mongo = MongoServer(home=state_dir / "mongo", host=HOST, port=self.ports.mongo)
        self.state_file = state_dir / "stack.json"
        self._state: StackState | None = None

    # -- what clients need -------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "MONGODB_URI": self.mongo.uri,
        }

    def running(self) -> StackState | None:
        """The recorded stack, if any of its processes is still alive."""
        state = StackState.load(self.state_file)
        if state is not None and any(state.alive().values()):
            return state
        return None

    # -- lifecycle ---------------------------------------------------------------------
    def start(
        self, *, timeout: float = 90.0, progress: Callable[[str], None] = lambda _m: None
    ) -> StackState:
        """Start Kafka and the Mongo-wire server and return once both answer."""
        if (existing := self.running()) is not None:
            raise StackError(
                f"a stack is already running from {self.state_dir} "
                f"(kafka pid {existing.kafka.pid}, mongo pid {existing.mongo.pid}); "
                "use it, or stop it with `gpu-analytics stack down`"
            )
        try:
            ensure_port_free(HOST, self.ports.kafka, "Kafka", "KAFKA_PORT / --kafka-port")
            ensure_port_free(
                HOST,
                self.ports.kafka_controller,
                "Kafka controller",
                "KAFKA_CONTROLLER_PORT / --kafka-controller-port",
            )
            ensure_port_free(HOST, self.ports.mongo, "MongoDB", "MONGO_PORT / --mongo-port")
            if self.kafka.metrics_address is not None:
                ensure_port_free(
                    HOST,
                    self.ports.kafka_metrics,
                    "Kafka metrics",
                    "KAFKA_METRICS_PORT / --kafka-metrics-port",
                )
            progress("formatting / preparing Kafka storage")
            kafka_cmd = self.kafka.prepare()
            mongo_cmd = self.mongo.prepare()
        except (PortInUseError, KafkaSetupError, MongoSetupError) as exc:
            raise StackError(str(exc)) from exc

        kafka_proc = spawn(kafka_cmd, self.kafka.log_file, cwd=self.state_dir)
        mongo_proc = spawn(mongo_cmd, self.mongo.log_file, cwd=self.state_dir)
        state = StackState(
            ports=self.ports,
            kafka=ProcessRef.of(kafka_proc.pid),
            mongo=ProcessRef.of(mongo_proc.pid),
        )
        state.save(self.state_file)
        self._state = state
        try:
            self._wait_ready(state, timeout=timeout, progress=progress)
        except BaseException:
            self.stop(state)
            raise
        return state

    def _wait_ready(
        self, state: StackState, *, timeout: float, progress: Callable[[str], None]
    ) -> None:
        deadline = time.monotonic() + timeout
        checks: dict[str, Callable[[], bool]] = {
            "mongo": self.mongo.answers_ping,
            "kafka": self.kafka.answers_metadata,
        }
        logs = {"kafka": self.kafka.log_file, "mongo": self.mongo.log_file}
        refs = {"kafka": state.kafka, "mongo": state.mongo}
        pending = dict(checks)
        while pending:
            for name in list(pending):
                if not refs[name].alive():
                    raise StackError(
                        f"{name} exited during start-up; first errors:\n{log_errors(logs[name])}"
                        f"\nlog tail:\n{log_tail(logs[name])}"
                    )
                if pending[name]():
                    progress(f"{name} is ready")
                    del pending[name]
            if pending and time.monotonic() > deadline:
                raise StackError(
                    f"{', '.join(pending)} did not answer within {timeout:.0f}s; see "
                    + ", ".join(str(logs[n]) for n in pending)
                )
            if pending:
                time.sleep(0.2)

    # -- outages, for the reliability tests --------------------------------------------
    def stop_service(self, name: str, *, timeout: float = 30.0) -> None:
        """Stop one server (`kafka` or `mongo`) and wait until its port is closed."""
        state = self._require_state()
        getattr(state, name).stop(timeout)
        port = self.ports.kafka if name == "kafka" else self.ports.mongo
        if not wait_ports_closed(HOST, [port], timeout=10):
            raise StackError(f"{name} still answers on port {port} after it stopped")

    def freeze_service(self, name: str) -> None:
        """SIGSTOP one server: its connections stay open and its port accepts, but nothing
        answers (a network partition or a stalled host as clients see it, not a refusal).
        Returns once all its threads have stopped."""
        getattr(self._require_state(), name).freeze()

    def thaw_service(self, name: str) -> None:
        """SIGCONT a server frozen by freeze_service: it answers again where it stopped."""
        getattr(self._require_state(), name).send(signal.SIGCONT)

    def start_service(self, name: str, *, timeout: float = 90.0) -> None:
        """Start one server again on the same data and ports, and wait until it answers."""
        state = self._require_state()
        server = self.kafka if name == "kafka" else self.mongo
        proc = spawn(server.prepare(), server.log_file, cwd=self.state_dir)
        refs = {"kafka": state.kafka, "mongo": state.mongo, name: ProcessRef.of(proc.pid)}
        state = StackState(ports=self.ports, **refs)
        state.save(self.state_file)
        self._state = state
        self._wait_ready(state, timeout=timeout, progress=lambda _m: None)

    def _require_state(self) -> StackState:
        state = self._state or StackState.load(self.state_file)
        if state is None:
            raise StackError("the stack is not running")
        return state

    def stop(self, state: StackState | None = None, *, timeout: float = 30.0) -> bool:
        """Stop exactly the processes this stack recorded and wait until its ports are free.

        Returns False when nothing was running."""
        state = state or self._state or StackState.load(self.state_file)
        if state is None:
            return False
        was_running = any(state.alive().values())
        # Mongo first: Kafka's controlled shutdown takes longest, it overlaps the wait below.
        state.mongo.stop(timeout)
        state.kafka.stop(timeout)
        ports = [state.ports.kafka, state.ports.kafka_controller, state.ports.mongo]
        if not wait_ports_closed(HOST, ports, timeout=10):
            raise StackError(f"ports {ports} still answer after the stack stopped")
        self.state_file.unlink(missing_ok=True)
        self._state = None
        return was_running


@dataclass(frozen=True)
class StackEnv:
    bootstrap_servers: str
    mongodb_uri: str
    local: LocalStack | None  # None when the servers run outside the test session


@contextmanager
def private_stack(state_dir: Path) -> Iterator[StackEnv]:
    """A stack of one's own on free ports (tests that stop servers, benchmarks)."""
    local = LocalStack(
        state_dir=state_dir,
        ports=StackPorts(
            kafka=free_port(), kafka_controller=free_port(), mongo=free_port(),
            kafka_metrics=free_port(),
        ),
    )  # fmt: skip
    local.start(timeout=120)
    try:
        env = local.env()
        yield StackEnv(env["KAFKA_BOOTSTRAP_SERVERS"], env["MONGODB_URI"], local)
    finally:
        local.stop()
