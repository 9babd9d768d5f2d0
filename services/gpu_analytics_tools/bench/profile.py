"""`make bench-profile`: where the processor and the producer spend their CPU, by py-spy.

`--path processor` runs the processor benchmark's worker (consume_worker.py, `ours` and the
bare `reference`) under `py-spy record` on one pre-produced topic of a private stack.
`--path ingest` attaches py-spy to a running processor while the HTTP ingest benchmark posts
its batches to it (ingest, publish, and the consumer storing what arrives: one process, as in
a pod); `--path otlp` does the same with the OTLP benchmark's protobuf trace bodies.
`--path producer` runs one producer benchmark run of ours (the real service, synthetic fleet,
rate unbounded) under py-spy. All four by default.

`--base REV` profiles that revision's processor too, from a worktree of it, on the same stack
and bodies (the processor path: its worker, `ours` only; ingest and OTLP: its processor), so
a change's profile before and after comes from one run. The producer path has no base run.
`--native` adds the C frames (uvloop, httptools, upb, the drivers' C parts) to ingest and OTLP.

Each raw profile (collapsed stacks, for flamegraph tools) goes to --out, and the frames with
the most samples are printed: by their own time and by the time spent under them, then the own
time by package (aiokafka, gpu_analytics, pydantic, ...): what the libraries cost and what our
code does. Start-up (imports) and the event loop waiting for the network are left out, so the
shares are of the work itself.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from gpu_analytics_tools.bench import ingest_rate
from gpu_analytics_tools.bench.processor_cpu import EVENTS, _fill_topic, worker_for
from gpu_analytics_tools.bench.run import base_checkout
from gpu_analytics_tools.stack.stack import StackEnv, private_stack
from gpu_analytics_tools.tools import require

# Frames of a process that is not working on events: imports, and threads parked waiting.
IDLE = (
    "EpollSelector.select",
    "_worker (concurrent/futures",
    "<frozen importlib._bootstrap",
    "Condition.wait (threading",
)


@dataclass
class Profile:
    samples: int
    own: Counter[str]
    under: Counter[str]

    def by_package(self) -> list[str]:
        """Own time by the top-level package (or stdlib module) of each leaf frame."""
        packages: Counter[str] = Counter()
        for frame, count in self.own.items():
            path = frame.rpartition(" (")[2].rpartition(":")[0]  # "pymongo/message.py"
            packages[path.split("/")[0].removesuffix(".py") or "?"] += count
        return [
            f"{count / self.samples:6.1%}  {package}" for package, count in packages.most_common()
        ]

    def top(self, n: int) -> list[str]:
        """The `n` frames with the most samples of their own, with the share under them."""
        lines = [f"{'own':>6} {'under':>6}  frame"]
        for frame, count in self.own.most_common(n):
            lines.append(
                f"{count / self.samples:6.1%} {self.under[frame] / self.samples:6.1%}  {frame}"
            )
        return lines


def read_collapsed(path: Path) -> Profile:
    """py-spy's raw output: one `frame;frame;...;leaf count` line per distinct stack."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack.strip() or any(idle in stack for idle in IDLE):
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            under[frame] += int(count)
    return Profile(total, own, under)


def _print(name: str, raw: Path, top: int) -> None:
    profile = read_collapsed(raw)
    print(f"{name}: {profile.samples} samples of work")  # noqa: T201
    print("\n".join(profile.top(top)))  # noqa: T201
    print("   own  by package")  # noqa: T201
    print("\n".join(profile.by_package()[:10]))  # noqa: T201


def _producer(py_spy: str, stack: StackEnv, out: Path, rate: int, top: int) -> None:
    raw = out / "producer-ours.txt"
    sys.stderr.write(f"bench-profile: producer ours under py-spy -> {raw}\n")
    subprocess.run(
        [py_spy, "record", "--rate", str(rate), "--format", "raw",
         "--output", str(raw), "--nonblocking", "--",
         sys.executable, "-m", "gpu_analytics_tools.bench.producer_rate",
         "--bootstrap-servers", stack.bootstrap_servers, "--ours-once"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    _print("producer ours", raw, top)


def _processor(
    py_spy: str, stack: StackEnv, out: Path, rate: int, top: int, base: Path | None
) -> None:
    topic = asyncio.run(_fill_topic(stack.bootstrap_servers, EVENTS))
    runs = [("ours", *worker_for(None)), ("reference", *worker_for(None))]
    if base is not None:
        runs.append(("base", *worker_for(base)))
    for name, worker, env in runs:
        raw = out / f"processor-{name}.txt"
        sys.stderr.write(f"bench-profile: processor {name} under py-spy -> {raw}\n")
        subprocess.run(
            [py_spy, "record", "--rate", str(rate), "--format", "raw",
             "--output", str(raw), "--nonblocking", "--",
             sys.executable, str(worker), "reference" if name == "reference" else "ours",
             stack.bootstrap_servers, stack.mongodb_uri, topic, str(EVENTS)],
            check=True, capture_output=True, timeout=600, env=env,
        )  # fmt: skip
        _print(f"processor {name}", raw, top)


async def _ingest(
    py_spy: str,
    stack: StackEnv,
    out: Path,
    rate: int,
    log_dir: Path,
    *,
    otlp: bool = False,
    base: Path | None = None,
    native: bool = False,
) -> Path:
    name = ("otlp" if otlp else "ingest") + ("-base" if base else "")
    raw = out / f"{name}-processor.txt"
    raw.unlink(missing_ok=True)  # a profile of an earlier run must not stand in for this one
    processor = await ingest_rate.start_processor(stack, log_dir, base)
    assert processor.proc is not None
    sys.stderr.write(f"bench-profile: {name}, processor under py-spy -> {raw}\n")
    spy = subprocess.Popen(
        [py_spy, "record", "--rate", str(rate), "--format", "raw", "--output", str(raw),
         "--pid", str(processor.proc.pid),
         # --native: C frames too; py-spy then pauses the process for each sample
         "--native" if native else "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        await asyncio.sleep(1.0)  # attached
        if otlp:
            bodies = [ingest_rate.otlp_body(calls) for calls in ingest_rate.calls()]
            path, media = "/v1/traces", "application/x-protobuf"
        else:
            bodies = [orjson.dumps(batch) for batch in ingest_rate.batches()]
            path, media = "/api/v1/gpu-metrics", "application/json"
        await ingest_rate.post_all(processor.url, path, bodies, media)
        await asyncio.sleep(1.0)  # the consumer stores the last batches
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its profile when interrupted
        _, err = spy.communicate(timeout=60)
        processor.stop()
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')}")
    return raw


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--path", choices=["processor", "ingest", "otlp", "producer"], action="append"
    )
    parser.add_argument("--out", type=Path, default=Path(".cache/bench-profile"))
    parser.add_argument("--top", type=int, default=15, help="frames to print per profile")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--native", action="store_true", help="C frames too (ingest and otlp)")
    parser.add_argument("--base", metavar="REV", help="profile this revision's processor too")
    args = parser.parse_args()
    py_spy = require("py-spy", "PY_SPY", folder=Path(sys.executable).parent)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = args.path or ["processor", "ingest", "otlp", "producer"]
    with (
        tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp,
        base_checkout(args.base) as base,
    ):
        sys.stderr.write("bench-profile: starting a private stack\n")
        with private_stack(Path(tmp) / "stack") as stack:
            if "processor" in paths:
                _processor(py_spy, stack, args.out, args.rate, args.top, base)
            processors = [(None, "processor")] + ([(base, f"base {args.base}")] if base else [])
            for path, title in (("ingest", "HTTP ingest"), ("otlp", "OTLP ingest")):
                if path not in paths:
                    continue
                for checkout, label in processors:
                    raw = asyncio.run(
                        _ingest(py_spy, stack, args.out, args.rate, Path(tmp),
                                otlp=path == "otlp", base=checkout, native=args.native)
                    )  # fmt: skip
                    _print(f"{title} ({label})", raw, args.top)
            if "producer" in paths:
                _producer(py_spy, stack, args.out, args.rate, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
