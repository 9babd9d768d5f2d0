"""scripts/k8s_schemas.py: offline Kubernetes schemas kubeconform can resolve."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gpu_analytics_tools.gitops import k3s, k8s_schemas

REPO = Path(__file__).resolve().parents[2]


SCHEMA_LOCATION = (
    "{root}/{{{{ .NormalizedKubernetesVersion }}}}-standalone{{{{ .StrictSuffix }}}}/"
    "{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json"
)
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27.3
          {field}: IfNotPresent
"""


def kubeconform() -> str:
    found = REPO / ".tools/bin/kubeconform"
    if found.is_file():
        return str(found)
    on_path = shutil.which("kubeconform")
    if on_path is None:
        pytest.skip("kubeconform not installed (make setup)")
    return on_path


@pytest.fixture(scope="module")
def schema_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("schemas")
    k8s_schemas.generate(root, "1.36.0")
    return root


def validate(schema_root: Path, manifest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            kubeconform(),
            "-strict",
            "-summary",
            "-kubernetes-version",
            "1.36.0",
            "-schema-location",
            SCHEMA_LOCATION.format(root=schema_root),
            str(manifest),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_generated_schemas_are_standalone(schema_root: Path) -> None:
    folder = schema_root / "v1.36.0-standalone-strict"
    schema = json.loads((folder / "deployment-apps-v1.json").read_text())
    text = json.dumps(schema)
    assert schema["properties"]["spec"]["$ref"] == "#/$defs/io.k8s.api.apps.v1.DeploymentSpec"
    assert "io.k8s.api.core.v1.PodSpec" in schema["$defs"]
    refs = set(re.findall(r'"\$ref": "([^"]*)"', text))
    assert refs and all(ref.startswith("#/$defs/") for ref in refs)
    assert all(ref.removeprefix("#/$defs/") in schema["$defs"] for ref in refs)
    assert '"$id"' not in text
    assert not (folder / "_definitions.json").exists()


def test_second_run_writes_nothing(schema_root: Path) -> None:
    assert k8s_schemas.generate(schema_root, "1.36.0") == []


def test_unknown_kubernetes_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no schemas for 0.1.0"):
        k8s_schemas.generate(tmp_path, "0.1.0")


def test_kubeconform_rejects_a_misspelt_field(schema_root: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(DEPLOYMENT.format(field="imagePullPolicyy"))
    proc = validate(schema_root, manifest)
    assert proc.returncode == 1, proc.stdout
    assert "additional properties 'imagePullPolicyy' not allowed" in proc.stdout
    assert "Invalid: 1" in proc.stdout


def test_kubeconform_accepts_the_same_manifest_spelt_right(
    schema_root: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "good.yaml"
    manifest.write_text(DEPLOYMENT.format(field="imagePullPolicy"))
    proc = validate(schema_root, manifest)
    assert proc.returncode == 0, proc.stdout
    assert "Valid: 1, Invalid: 0, Errors: 0, Skipped: 0" in proc.stdout


def test_the_kubernetes_version_is_the_k3s_pin(tmp_path: Path) -> None:
    """One place: clusters/local/k3d.env. The schemas are the minor release's, x.y.0."""
    pin = (REPO / k3s.PIN).read_text()
    tag = re.search(r"^K3S_IMAGE=\S+:v(\S+)-k3s\d+$", pin, re.M)
    assert tag and k3s.kubernetes_version(REPO) == tag.group(1)
    assert k3s.schema_version(REPO) == ".".join(tag.group(1).split(".")[:2]) + ".0"
    (tmp_path / k3s.PIN).parent.mkdir(parents=True)
    (tmp_path / k3s.PIN).write_text("K3S_IMAGE=rancher/k3s:latest\n")
    with pytest.raises(ValueError, match="no K3S_IMAGE="):
        k3s.kubernetes_version(tmp_path)
