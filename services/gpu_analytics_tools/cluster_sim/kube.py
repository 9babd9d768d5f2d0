"""A small client for the simulation's API server (JSON over HTTPS with the admin client
certificate) and the kubeconfig files that point at it. The simulation needs a handful of
calls; a full client library would be a large dependency for them."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_analytics_tools.cluster_sim.pki import Pki

Obj = dict[str, Any]


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"API server answered {status}: {body[:300]}")
        self.status = status


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    pki: Pki

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"


class KubeClient:
    def __init__(self, endpoint: Endpoint, timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._ctx = ssl.create_default_context(cafile=str(endpoint.pki.ca_cert))
        self._ctx.load_cert_chain(str(endpoint.pki.cert("admin")), str(endpoint.pki.key("admin")))

    def request(self, method: str, path: str, body: Obj | None = None) -> Obj:
        conn = http.client.HTTPSConnection(
            self.endpoint.host, self.endpoint.port, context=self._ctx, timeout=self.timeout
        )
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        if resp.status >= 400:
            raise ApiError(resp.status, data)
        parsed: Obj = json.loads(data) if data.startswith("{") else {"text": data}
        return parsed

    def get(self, path: str) -> Obj:
        return self.request("GET", path)

    def create(self, path: str, body: Obj) -> Obj:
        return self.request("POST", path, body)

    def ready(self) -> bool:
        try:
            return str(self.get("/readyz").get("text", "")).strip() == "ok"
        except (OSError, ApiError, ssl.SSLError):
            return False


def write_kubeconfig(path: Path, endpoint: Endpoint, namespace: str = "default") -> Path:
    """A kubeconfig for the admin user (JSON is valid kubeconfig YAML)."""
    pki = endpoint.pki
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "cluster-sim",
                "cluster": {"server": endpoint.url, "certificate-authority": str(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate": str(pki.cert("admin")),
                    "client-key": str(pki.key("admin")),
                },
            }
        ],
        "contexts": [
            {
                "name": "cluster-sim",
                "context": {"cluster": "cluster-sim", "user": "admin", "namespace": namespace},
            }
        ],
        "current-context": "cluster-sim",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return path
