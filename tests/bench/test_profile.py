"""make bench-profile's reading of py-spy's collapsed stacks: shares of the work, with
start-up and waiting left out."""

from __future__ import annotations

from pathlib import Path

from gpu_analytics_tools.bench.profile import read_collapsed


def test_own_and_under_shares_leave_idle_and_imports_out(tmp_path: Path) -> None:
    raw = tmp_path / "p.txt"
    raw.write_text(
        "main (w.py:1);run (c.py:10);decode (c.py:20) 6\n"
        "main (w.py:1);run (c.py:10);store (s.py:5);encode (m.py:3) 3\n"
        "main (w.py:1);run (c.py:10) 1\n"
        "main (w.py:1);run_forever (a.py:1);EpollSelector.select (selectors.py:468) 50\n"
        "<module> (w.py:2);_call_with_frames_removed (<frozen importlib._bootstrap>:241) 40\n"
    )
    profile = read_collapsed(raw)
    assert profile.samples == 10
    assert profile.own["decode (c.py:20)"] == 6
    assert profile.under["run (c.py:10)"] == 10
    assert profile.under["store (s.py:5)"] == 3
    lines = profile.top(2)
    assert lines[1].split() == ["60.0%", "60.0%", "decode", "(c.py:20)"]
    assert lines[2].split()[:2] == ["30.0%", "30.0%"]
    assert len(lines) == 3


def test_own_time_by_package_says_what_the_library_and_our_code_cost(tmp_path: Path) -> None:
    raw = tmp_path / "p.txt"
    raw.write_text(
        "run (gpu_analytics/producer/service.py:1);append (aiokafka/producer/b.py:77) 3\n"
        "run (gpu_analytics/producer/service.py:1);model_dump (pydantic/main.py:5) 2\n"
        "run (gpu_analytics/producer/service.py:2) 4\n"
        "run (gpu_analytics/producer/service.py:1);gauss (random.py:592) 1\n"
        "run (gpu_analytics/producer/service.py:1);__subclasscheck__ (<frozen abc>:123) 1\n"
    )
    assert [line.split(maxsplit=1) for line in read_collapsed(raw).by_package()] == [
        ["36.4%", "gpu_analytics"],
        ["27.3%", "aiokafka"],
        ["18.2%", "pydantic"],
        ["9.1%", "random"],
        ["9.1%", "<frozen abc>"],
    ]
