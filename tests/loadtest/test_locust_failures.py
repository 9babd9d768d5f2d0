"""The ingest users count an answer other than 202 as a failure in Locust's statistics: a 503
from a processor that cannot reach Kafka must show as failed load, not as served load.

Locust runs headless against a tiny local HTTP server that answers every request with one fixed
status (503 with Retry-After, as the processor answers while Kafka is down; or 202).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LOADTEST = Path(__file__).resolve().parents[2] / "loadtest"
LOCUST = str(Path(sys.executable).with_name("locust"))
INGEST = ("POST gpu-metrics x100", "POST token-usage x100")


@contextmanager
def answering(status: int) -> Iterator[str]:
    """A server on 127.0.0.1 answering every POST with `status`; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the processor's uvicorn

        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = b'{"detail":"Kafka is not reachable now"}' if status == 503 else b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 503:
                self.send_header("Retry-After", "5")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def run_ingest_users(url: str, csv_prefix: Path) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Locust's per-endpoint statistics and its failure messages, after a short headless run of
    `IngestUser` only."""
    result = subprocess.run(
        [
            LOCUST,
            "-f",
            str(LOADTEST / "users.py"),
            "IngestUser",
            "--headless",
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "3s",
            "--host",
            url,
            "--json",
            "--only-summary",
            "--csv",
            str(csv_prefix),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: the run had failures
    stats = {entry["name"]: entry for entry in json.loads(result.stdout)}
    with Path(f"{csv_prefix}_failures.csv").open(newline="") as failures:
        messages = [row["Error"] for row in csv.DictReader(failures)]
    return stats, messages


@pytest.mark.parametrize("status", [503, 200, 500])
def test_an_ingest_answer_other_than_202_is_a_failure(status: int, tmp_path: Path) -> None:
    with answering(status) as url:
        stats, messages = run_ingest_users(url, tmp_path / "run")
    for name in INGEST:
        assert stats[name]["num_requests"] > 0, stats
        assert stats[name]["num_failures"] == stats[name]["num_requests"], stats[name]
    assert messages, "no failure message recorded"
    expected = f"HTTP {status}, expected 202"
    if status == 503:
        expected += " (Retry-After: 5)"
    assert all(expected in message for message in messages), messages


def test_a_202_answer_is_a_success(tmp_path: Path) -> None:
    with answering(202) as url:
        stats, messages = run_ingest_users(url, tmp_path / "run")
    for name in INGEST:
        assert stats[name]["num_requests"] > 0, stats
        assert stats[name]["num_failures"] == 0, stats[name]
    assert messages == []
