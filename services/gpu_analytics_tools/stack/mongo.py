"""SecantusDB's MongoDB-wire server: real TCP, real wire protocol, WiredTiger storage."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError


class MongoSetupError(RuntimeError):
    pass


def server_binary() -> str:
    # The console script sits next to the interpreter of the project's environment.
    beside = Path(sys.executable).with_name("secantusd-py")
    if beside.exists():
        return str(beside)
    found = shutil.which("secantusd-py")
    if not found:
        raise MongoSetupError("secantusd-py not found: run `make setup` (SecantusDB from the lock)")
    return found


class MongoServer:
    def __init__(self, *, home: Path, host: str, port: int) -> None:
        self.home = home
        self.host = host
        self.port = port
        self.log_file = home / "mongo.log"

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}"

    def prepare(self) -> list[str]:
        data_dir = self.home / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        return [
            server_binary(),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--storage-path",
            str(data_dir),
            "--log-level",
            "WARNING",
        ]

    def answers_ping(self) -> bool:
        client: MongoClient[dict[str, object]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=300, connectTimeoutMS=300
        )
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()
