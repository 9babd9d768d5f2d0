"""`make bench-profile`: where the processor's consumer spends its CPU, sampled by py-spy.

Runs the processor benchmark's worker (consume_worker.py, `ours` and the bare `reference`) under
`py-spy record` on one pre-produced topic of a private stack, writes each raw profile (collapsed
stacks, for flamegraph tools) to --out, and prints the frames with the most samples: by their
own time and by the time spent under them. Start-up (imports) and the event loop waiting for
the network are left out, so the shares are of the work itself.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from gpu_analytics_tools.bench.processor_cpu import EVENTS, WORKER, _fill_topic
from gpu_analytics_tools.stack.stack import private_stack
from gpu_analytics_tools.tools import require

# Frames of a process that is not working on events: imports, and threads parked waiting.
IDLE = ("EpollSelector.select", "_worker (concurrent/futures", "<frozen importlib._bootstrap")


@dataclass
class Profile:
    samples: int
    own: Counter[str]
    under: Counter[str]

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".cache/bench-profile"))
    parser.add_argument("--top", type=int, default=15, help="frames to print per profile")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    args = parser.parse_args()
    py_spy = require("py-spy", "PY_SPY", folder=Path(sys.executable).parent)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        sys.stderr.write("bench-profile: starting a private stack\n")
        with private_stack(Path(tmp) / "stack") as stack:
            topic = asyncio.run(_fill_topic(stack.bootstrap_servers, EVENTS))
            for mode in ("ours", "reference"):
                raw = args.out / f"processor-{mode}.txt"
                sys.stderr.write(f"bench-profile: processor {mode} under py-spy -> {raw}\n")
                subprocess.run(
                    [py_spy, "record", "--rate", str(args.rate), "--format", "raw",
                     "--output", str(raw), "--nonblocking", "--",
                     sys.executable, str(WORKER), mode, stack.bootstrap_servers,
                     stack.mongodb_uri, topic, str(EVENTS)],
                    check=True, capture_output=True, timeout=600,
                )  # fmt: skip
                profile = read_collapsed(raw)
                print(f"processor {mode}: {profile.samples} samples of work")  # noqa: T201
                print("\n".join(profile.top(args.top)))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
