"""Where terraform/ and the GitOps tree meet: SSM names, region, node role, GPU node label.

The GitOps tree is the reference: its ExternalSecrets read fixed SSM names, its `aws-ssm`
ClusterSecretStore pins a region and carries no role (the node's instance role is used), and
its GPU DaemonSet selects nodes by a label. Terraform's side is evaluated offline where it is
an expression (the root's variables and the secrets module's locals need no provider).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import (
    REPO_ROOT,
    TERRAFORM_DIR,
    blocks,
    copy_terraform_tree,
    root_locals,
    run,
    terraform_env,
)

# Where the manifests that use what Terraform creates live.
GITOPS_DIRS = ("platform", "services/deploy", "monitoring", "apps", "clusters", "bootstrap")
SECRET_STORE = REPO_ROOT / "platform/external-secrets/aws-ssm-clustersecretstore.yaml"
GPU_TAINT_KEY = "nvidia.com/gpu"


def gitops_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    for directory in GITOPS_DIRS:
        for path in sorted((REPO_ROOT / directory).rglob("*.yaml")):
            try:
                documents = list(yaml.safe_load_all(path.read_text()))
            except yaml.YAMLError:
                continue  # not a manifest (e.g. a templated values file)
            for doc in documents:
                if isinstance(doc, dict) and "kind" in doc:
                    yield path, doc


def external_secret_keys() -> dict[str, set[str]]:
    """SSM names the ExternalSecrets read through the `aws-ssm` store => files reading each."""
    keys: dict[str, set[str]] = {}
    for path, doc in gitops_objects():
        if doc["kind"] != "ExternalSecret":
            continue
        spec = doc["spec"]
        assert spec["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "aws-ssm"}, path
        refs = [d["remoteRef"] for d in spec.get("data", [])]
        refs += [d["extract"] for d in spec.get("dataFrom", []) if "extract" in d]
        assert not any("find" in d for d in spec.get("dataFrom", [])), f"{path}: dataFrom.find"
        for ref in refs:
            keys.setdefault(ref["key"], set()).add(str(path.relative_to(REPO_ROOT)))
    return keys


def terraform_outputs(
    terraform_bin: Path, tree: Path, workdir: Path, config: str, *assignments: str
) -> tuple[int, str, dict[str, Any]]:
    """Applies the root's variables and locals of `tree` plus `config` offline.

    Returns the exit code, terraform's output and the outputs' values.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    root_locals(tree, workdir)
    (workdir / "main.tf").write_text(config)
    env = terraform_env()
    init = run([terraform_bin, "init", "-no-color"], cwd=workdir, env=env)
    assert init.returncode == 0, init.stderr
    args: list[str | Path] = [terraform_bin, "apply", "-auto-approve", "-no-color"]
    for assignment in assignments:
        args += ["-var", assignment]
    applied = run(args, cwd=workdir, env=env)
    text = " ".join((applied.stdout + applied.stderr).split())
    if applied.returncode != 0:
        return applied.returncode, text, {}
    result = run([terraform_bin, "output", "-json"], cwd=workdir, env=env)
    outputs: dict[str, Any] = json.loads(result.stdout)
    return 0, text, {name: value["value"] for name, value in outputs.items()}


# ---- SSM parameter names ------------------------------------------------------------------


def terraform_parameter_names(terraform_bin: Path, tree: Path, workdir: Path) -> set[str]:
    """The SSM names Terraform writes with the root's defaults."""
    secrets = (tree / "modules/secrets/main.tf").read_text()
    assert re.search(
        r'resource "aws_ssm_parameter" "this" \{[^}]*name\s*=\s*"\$\{var\.parameter_prefix\}/'
        r'\$\{each\.key\}"',
        secrets,
    ), "modules/secrets no longer names parameters <parameter_prefix>/<key>; update this test"
    assert re.search(
        r"parameter_prefix\s*=\s*var\.parameter_path", (tree / "main.tf").read_text()
    ), "the root no longer passes var.parameter_path to modules/secrets; update this test"
    module_locals = "\n".join(re.findall(r"^locals \{.*?^\}", secrets, flags=re.M | re.S))
    config = (
        module_locals
        + '\noutput "names" {\n'
        + "  value = [for key in keys(merge(local.parameters, local.given)) :"
        + ' "${var.parameter_path}/${key}"]\n}\n'
    )
    code, text, outputs = terraform_outputs(terraform_bin, tree, workdir, config)
    assert code == 0, text
    return set(outputs["names"])


def test_terraform_writes_exactly_the_ssm_names_the_external_secrets_read(
    terraform_bin: Path, tmp_path: Path
) -> None:
    written = terraform_parameter_names(terraform_bin, TERRAFORM_DIR, tmp_path)
    read = external_secret_keys()

    assert read, "no ExternalSecret found in the GitOps tree"
    assert written == set(read), (
        f"Terraform writes {sorted(written)}, the ExternalSecrets read {sorted(read)}"
    )


def test_ssm_name_drift_is_caught(terraform_bin: Path, tmp_path: Path) -> None:
    """Planted: Terraform renames one parameter; the names no longer match."""
    tree = copy_terraform_tree(tmp_path)
    secrets = tree / "modules/secrets/main.tf"
    text = secrets.read_text()
    assert text.count('"grafana/admin-password"') == 1
    secrets.write_text(text.replace('"grafana/admin-password"', '"grafana/admin"'))

    written = terraform_parameter_names(terraform_bin, tree, tmp_path / "eval")

    assert written != set(external_secret_keys())
    assert "/gpu-analytics/grafana/admin" in written


def test_join_token_is_not_among_the_external_secrets_names() -> None:
    main = (TERRAFORM_DIR / "main.tf").read_text()

    assert 'token_parameter_name = "${var.parameter_path}/k3s/token"' in main
    assert not any(key.endswith("/k3s/token") for key in external_secret_keys())


# ---- region -------------------------------------------------------------------------------


def secret_store() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(SECRET_STORE.read_text())
    assert doc["kind"] == "ClusterSecretStore" and doc["metadata"]["name"] == "aws-ssm"
    return doc


def region_check_config(tree: Path) -> str:
    """The root's `secret_parameters` output (with its region precondition), module-free."""
    body = blocks((tree / "outputs.tf").read_text(), "output")["secret_parameters"]
    assert body.count("module.secrets.parameter_names") == 1
    body = body.replace("module.secrets.parameter_names", "{}")
    return f'output "secret_parameters" {{{body}}}\n\noutput "region" {{ value = var.region }}\n'


def test_default_region_is_the_secret_stores_region(terraform_bin: Path, tmp_path: Path) -> None:
    code, text, outputs = terraform_outputs(
        terraform_bin, TERRAFORM_DIR, tmp_path, region_check_config(TERRAFORM_DIR)
    )

    assert code == 0, text
    assert outputs["region"] == secret_store()["spec"]["provider"]["aws"]["region"]


def test_another_region_than_the_secret_stores_fails_the_plan(
    terraform_bin: Path, tmp_path: Path
) -> None:
    """Planted: region set in tfvars without changing the ClusterSecretStore."""
    code, text, _ = terraform_outputs(
        terraform_bin,
        TERRAFORM_DIR,
        tmp_path,
        region_check_config(TERRAFORM_DIR),
        "region=us-east-1",
    )

    assert code != 0
    assert "External Secrets reads SSM in eu-west-1" in text, text


# ---- External Secrets' credentials: the node role -----------------------------------------


def test_secret_store_uses_the_node_role() -> None:
    """No role ARN or access keys in git: the operator takes the instance's credentials."""
    aws = secret_store()["spec"]["provider"]["aws"]

    assert aws["service"] == "ParameterStore"
    assert "role" not in aws and "auth" not in aws


def test_node_role_gets_the_read_policy_and_no_separate_role() -> None:
    secrets = (TERRAFORM_DIR / "modules/secrets/main.tf").read_text()
    resources = set(re.findall(r'^resource "(\w+)" "(\w+)"', secrets, re.M))
    attachment = re.search(
        r'^resource "aws_iam_role_policy_attachment" "node_read" \{(.*?)^\}', secrets, re.M | re.S
    )

    assert attachment, "the read policy is not attached to the node role"
    assert re.search(r"^\s*role\s*=\s*var\.node_role_name$", attachment.group(1), re.M)
    assert re.search(r"^\s*policy_arn\s*=\s*aws_iam_policy\.read\.arn$", attachment.group(1), re.M)
    assert not {r for r in resources if r[0] == "aws_iam_role"}, "an assumable role is back"
    assert "sts:AssumeRole" not in secrets


def test_node_role_reads_no_parameter_beyond_its_own() -> None:
    """AWS managed SSM policies allow ssm:GetParameter(s) on `*`: none is attached."""
    readers = 0
    for path in TERRAFORM_DIR.rglob("*.tf"):
        text = path.read_text()
        for arn in re.findall(r'policy_arn\s*=\s*"([^"]*)"', text):
            assert ":policy/" not in arn, f"{path}: AWS managed policy {arn}"
        for statement in re.findall(r"^  statement \{(.*?)^  \}", text, flags=re.M | re.S):
            if "ssm:GetParameter" in statement:
                readers += 1
                assert '"*"' not in statement, f"{path}: ssm:GetParameter on *"
    assert readers == 2, "expected the join token and External Secrets' read statements"


def test_instances_let_pods_reach_the_node_role() -> None:
    """External Secrets runs in a pod: one hop more than the host (IMDSv2 hop limit 2)."""
    variables = blocks((TERRAFORM_DIR / "variables.tf").read_text(), "variable")

    assert re.search(r"default\s*=\s*2\b", variables["imds_hop_limit"])
    cluster = (TERRAFORM_DIR / "modules/cluster/main.tf").read_text()
    assert cluster.count("http_put_response_hop_limit = var.imds_hop_limit") == 3


# ---- GPU node label -----------------------------------------------------------------------


def gpu_node() -> tuple[dict[str, str], list[dict[str, str]]]:
    """Labels and taints modules/cluster registers the GPU agent with (taint on)."""
    text = (TERRAFORM_DIR / "modules/cluster/main.tf").read_text()
    block = text[text.index('module "gpu_cloud_init"') :]
    label = re.search(r'"node-label"\s*=\s*(\[[^\]]*\])', block)
    taint = re.search(r'"node-taint"\s*=\s*var\.gpu_agent\.taint \? (\[[^\]]*\])', block)
    assert label and taint
    labels = dict(item.split("=", 1) for item in json.loads(label.group(1)))
    taints = []
    for item in json.loads(taint.group(1)):
        key_value, effect = item.rsplit(":", 1)
        key, _, value = key_value.partition("=")
        taints.append({"key": key, "value": value, "effect": effect})
    return labels, taints


def tolerates(tolerations: list[dict[str, str]], taint: dict[str, str]) -> bool:
    for t in tolerations:
        if t.get("effect") not in (None, "", taint["effect"]):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("value") == taint["value"]:
            return True
    return False


def gpu_pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """Pod templates that ask for a GPU node (nvidia runtime or an nvidia.com node selector)."""
    specs = []
    for path, doc in gitops_objects():
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        if not isinstance(pod, dict):
            continue
        selector = pod.get("nodeSelector") or {}
        if pod.get("runtimeClassName") == "nvidia" or any("nvidia.com" in k for k in selector):
            specs.append((f"{path.relative_to(REPO_ROOT)} {doc['metadata']['name']}", pod))
    return specs


def gpu_mismatches(
    specs: list[tuple[str, dict[str, Any]]],
    labels: dict[str, str],
    taints: list[dict[str, str]],
) -> list[str]:
    """Why each GPU pod template would not land on the GPU agent (empty: all would)."""
    problems = []
    for name, pod in specs:
        selector = pod.get("nodeSelector") or {}
        if not selector:
            problems.append(f"{name} has no nodeSelector")
        elif not selector.items() <= labels.items():
            problems.append(f"{name} selects {selector}, the GPU agent has {labels}")
        for taint in taints:
            if not tolerates(pod.get("tolerations") or [], taint):
                problems.append(f"{name} does not tolerate {taint}")
    return problems


def test_gpu_workloads_select_the_label_the_gpu_agent_registers_with() -> None:
    labels, taints = gpu_node()
    specs = gpu_pod_specs()

    assert specs, "no GPU workload in the GitOps tree (services/deploy DaemonSet)"
    assert gpu_mismatches(specs, labels, taints) == []


def test_nvidia_runtime_class_selects_the_gpu_agent() -> None:
    labels, taints = gpu_node()
    runtime_class = yaml.safe_load(
        (TERRAFORM_DIR / "modules/cluster/manifests/runtimeclass-nvidia.yaml").read_text()
    )

    assert (
        gpu_mismatches([("RuntimeClass nvidia", runtime_class["scheduling"])], labels, taints) == []
    )
    assert [t["key"] for t in taints] == [GPU_TAINT_KEY]


@pytest.mark.parametrize(
    "change",
    [
        {"nodeSelector": {"nvidia.com/gpu.present": "yes"}},
        {"nodeSelector": {"accelerator": "nvidia"}},
        {"tolerations": []},
    ],
)
def test_gpu_label_or_taint_mismatch_is_caught(change: dict[str, Any]) -> None:
    """Planted: the DaemonSet selects a label the GPU agent lacks, or ignores its taint."""
    labels, taints = gpu_node()
    (name, pod), *_ = gpu_pod_specs()

    assert gpu_mismatches([(name, {**pod, **change})], labels, taints)
