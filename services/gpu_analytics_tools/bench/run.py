"""`make bench`: the performance benchmarks, each against a reference in the same run.

Starts a private Kafka + MongoDB-wire stack on free ports, runs every benchmark `--runs` times
(medians; all but the producer at least 5 times), and ends with one JSON object per benchmark
on its own line:

    {"bench": "processor_cpu_per_event", "ratio": ..., ...}   ours / bare loop CPU per event
                                                             (+ head_over_base with --base REV)
    {"bench": "producer_cpu_per_event", "ratio": ..., ...}    ours / Java ProducerPerformance,
                                                             CPU per event (+ throughput_ratio)
    {"bench": "http_ingest_rate", "ratio": ..., ...}          ours / direct Kafka publish
                                                             (+ head_over_base with --base REV)
    {"bench": "otlp_ingest_rate", "ratio": ..., ...}          OTLP traces / our JSON, same calls
                                                             (+ head_over_base with --base REV)
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gpu_analytics_tools.bench import ingest_rate, processor_cpu, producer_rate
from gpu_analytics_tools.stack.paths import repo_root
from gpu_analytics_tools.stack.stack import private_stack

# The processor's runs take seconds each and its CPU figures scatter most (±15 % on a 2-core
# machine); the ingest lines divide two rates, each of which moves with everything else on the
# machine. At least five runs for those, for a median that one slow run cannot move.
MIN_RUNS = 5


def _progress(message: str) -> None:
    sys.stderr.write(f"bench: {message}\n")


@contextmanager
def base_checkout(rev: str | None) -> Iterator[Path | None]:
    """A detached worktree of `rev` for the time of the run (None: no base)."""
    if rev is None:
        yield None
        return
    root = repo_root()
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        path = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(root), "worktree", "add", "--detach", str(path), rev],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        _progress(f"base {rev} checked out at {path}")
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "-C", str(root), "worktree", "remove", "--force", str(path)],
                check=False, capture_output=True,
            )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per benchmark (median)")
    parser.add_argument(
        "--only", choices=["processor", "producer", "ingest", "otlp"], action="append"
    )
    parser.add_argument(
        "--base",
        metavar="REV",
        help="also run this git revision's processor consumer and HTTP/OTLP ingest, "
        "interleaved (a worktree of it)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    selected = args.only or ["processor", "producer", "ingest", "otlp"]
    runs = max(args.runs, MIN_RUNS)  # the producer's: args.runs (each starts a JVM)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, base_checkout(args.base) as base:
        _progress("starting a private stack")
        results = []
        with private_stack(Path(tmp) / "stack") as stack_env:
            env = {
                "KAFKA_BOOTSTRAP_SERVERS": stack_env.bootstrap_servers,
                "MONGODB_URI": stack_env.mongodb_uri,
            }
            if "processor" in selected:
                sys.stderr.write("bench: processor CPU per stored event ...\n")
                results.append(
                    processor_cpu.bench(
                        env["KAFKA_BOOTSTRAP_SERVERS"], env["MONGODB_URI"], runs, base
                    )
                )
            if "producer" in selected:
                sys.stderr.write("bench: producer CPU per event and send rate ...\n")
                results.append(producer_rate.bench(env["KAFKA_BOOTSTRAP_SERVERS"], args.runs))
            if "ingest" in selected:
                sys.stderr.write("bench: HTTP ingest rate ...\n")
                results.append(ingest_rate.bench(stack_env, runs, Path(tmp), base))
            if "otlp" in selected:
                sys.stderr.write("bench: OTLP trace ingest rate ...\n")
                results.append(ingest_rate.bench_otlp(stack_env, runs, Path(tmp), base))
    for result in results:
        sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
