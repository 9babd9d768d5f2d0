"""The simulation's certificates: one CA, the API server's serving pair, the admin client
pair and the service-account signing key, made with the openssl command line (short-lived,
in the state folder, never reused across simulations)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Names the API server answers to, inside the namespace and through the forwarder; the
# first Service IP of K3s's default service CIDR is the `kubernetes` Service.
SERVING_NAMES = [
    "IP:127.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "IP:10.43.0.1",
]
DAYS = "7"


@dataclass(frozen=True)
class Pki:
    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    def cert(self, name: str) -> Path:
        return self.root / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.root / f"{name}.key"

    @property
    def sa_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.root / "sa.pub"


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl not found: the simulation makes its certificates with it")
    proc = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _issue(pki: Pki, name: str, subject: str, extensions: str) -> None:
    ext = pki.root / f"{name}.ext"
    ext.write_text(extensions, encoding="ascii")
    csr = pki.root / f"{name}.csr"
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(pki.key(name)), "-out", str(csr), "-subj", subject, cwd=pki.root,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(pki.ca_cert), "-CAkey", str(pki.ca_key),
        "-CAcreateserial", "-days", DAYS, "-out", str(pki.cert(name)), "-extfile", str(ext),
        cwd=pki.root,
    )  # fmt: skip
    csr.unlink()
    ext.unlink()


def make_pki(root: Path) -> Pki:
    """A fresh PKI in `root` (created, mode 0700)."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    pki = Pki(root)
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(pki.ca_key), "-out", str(pki.ca_cert), "-days", DAYS,
        "-subj", "/CN=gpu-analytics-cluster-sim-ca", cwd=root,
    )  # fmt: skip
    _issue(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        f"subjectAltName={','.join(SERVING_NAMES)}\nextendedKeyUsage=serverAuth\n",
    )
    # system:masters: every component of the simulation acts as cluster admin, as K3s's
    # embedded controllers do; RBAC still applies to the service accounts of the tree.
    _issue(pki, "admin", "/O=system:masters/CN=admin", "extendedKeyUsage=clientAuth\n")
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
        "-out", str(pki.sa_key), cwd=root,
    )  # fmt: skip
    _openssl("pkey", "-in", str(pki.sa_key), "-pubout", "-out", str(pki.sa_pub), cwd=root)
    return pki
