"""The nodes' cloud-init, rendered by the real module with the root's bootstrap manifests.

modules/k3s-cloud-init needs no provider, so `terraform init` + `terraform apply` on a small
configuration that only has outputs renders it offline. The server gets the manifests that the
root's own `locals` compute from the repository (copied from terraform/main.tf, evaluated with
the root's variables.tf); the other values follow what modules/cluster passes for the server,
a CPU agent and the GPU agent.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import re
import shlex
import subprocess
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import (
    REPO_ROOT,
    DuplicateKeyError,
    copy_terraform_tree,
    load_all_unique,
    load_unique,
    root_locals,
    run,
    terraform_env,
)

ROLES = ("server", "agent", "gpu-agent")
EC2_USER_DATA_LIMIT = 16384
BOOTSTRAP_SCRIPT = "/usr/local/sbin/k3s-bootstrap"
K3S_CONFIG = "/etc/rancher/k3s/config.yaml"
MANIFEST_DIR = "/var/lib/rancher/k3s/server/manifests/"
TOP_LEVEL_KEYS = {"ssh_pwauth", "write_files", "runcmd"}
SERVER_URL = "https://10.40.10.10:6443"
RUNTIME_CLASS = "runtimeclass-nvidia.yaml"
PLACEHOLDER = "from-root-app"


def hcl_string(value: str) -> str:
    return json.dumps(value)


def gpu_agent_k3s_config(tree: Path) -> dict[str, list[str]]:
    """node-label and node-taint that modules/cluster gives the GPU agent (taint on)."""
    text = (tree / "modules/cluster/main.tf").read_text()
    block = text[text.index('module "gpu_cloud_init"') :]
    label = re.search(r'"node-label"\s*=\s*(\[[^\]]*\])', block)
    taint = re.search(r'"node-taint"\s*=\s*var\.gpu_agent\.taint \? (\[[^\]]*\])', block)
    assert label and taint, "node-label/node-taint of the GPU agent not found in modules/cluster"
    return {"node-label": json.loads(label.group(1)), "node-taint": json.loads(taint.group(1))}


@dataclass(frozen=True)
class Rendered:
    documents: dict[str, str]
    user_data: dict[str, str]
    user_data_bytes: dict[str, int]
    bootstrap_files: dict[str, str]  # file name in the auto-deploy folder => repo path
    gpu_k3s_config: dict[str, list[str]]


class RenderError(Exception):
    """terraform could not render the cloud-init (message: its stderr)."""


def render(
    tree: Path,
    workdir: Path,
    terraform_bin: Path,
    extra_manifests: dict[str, Path] | None = None,
    variables: Sequence[str] = (),
) -> Rendered:
    """Renders server, agent and GPU agent user data from the module in `tree`.

    The server gets the root's bootstrap manifests (the root's locals, evaluated here), the
    GPU RuntimeClass and `extra_manifests`, as modules/cluster passes them.
    """
    module = tree / "modules/k3s-cloud-init"
    extra = {RUNTIME_CLASS: tree / "modules/cluster/manifests/runtimeclass-nvidia.yaml"}
    extra.update(extra_manifests or {})
    extra_map = "\n".join(
        f"    {hcl_string(name)} = file({hcl_string(str(path))})" for name, path in extra.items()
    )
    gpu_config = gpu_agent_k3s_config(tree)
    workdir.mkdir(parents=True, exist_ok=True)
    root_locals(tree, workdir, outputs=["bootstrap_manifests"])
    (workdir / "main.tf").write_text(
        textwrap.dedent(
            """\
            module "server" {
              source = %(module)s
              role   = "server"
              k3s_config = {
                "write-kubeconfig-mode" = "0600"
                "secrets-encryption"    = true
                "flannel-backend"       = "vxlan"
                "disable"               = ["traefik"]
              }
              manifests = merge(local.bootstrap_manifests, {
            %(extra)s
              })
              apply_once = keys(local.bootstrap_manifests)
            }

            module "agent" {
              source     = %(module)s
              role       = "agent"
              server_url = %(server_url)s
            }

            module "gpu_agent" {
              source                 = %(module)s
              role                   = "agent"
              server_url             = %(server_url)s
              require_nvidia_runtime = true
              k3s_config = {
                "node-label" = %(node_label)s
                "node-taint" = %(node_taint)s
              }
            }

            locals {
              all = {
                "server"    = module.server
                "agent"     = module.agent
                "gpu-agent" = module.gpu_agent
              }
            }

            output "documents" {
              value = { for k, m in local.all : k => m.cloud_config }
            }

            output "user_data" {
              value = { for k, m in local.all : k => m.user_data_base64 }
            }

            output "user_data_bytes" {
              value = { for k, m in local.all : k => m.user_data_bytes }
            }

            output "bootstrap_files" {
              value = local.bootstrap_files
            }
            """
        )
        % {
            "module": hcl_string(str(module)),
            "extra": extra_map,
            "server_url": hcl_string(SERVER_URL),
            "node_label": json.dumps(gpu_config["node-label"]),
            "node_taint": json.dumps(gpu_config["node-taint"]),
        }
    )
    env = terraform_env()
    assignments = [arg for variable in variables for arg in ("-var", variable)]
    for args in (
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-no-color", *assignments],
    ):
        result = run([terraform_bin, *args], cwd=workdir, env=env)
        if result.returncode != 0:
            raise RenderError(result.stderr + result.stdout)
    result = run([terraform_bin, "output", "-json", "-no-color"], cwd=workdir, env=env)
    if result.returncode != 0:
        raise RenderError(result.stderr)
    outputs: dict[str, Any] = json.loads(result.stdout)
    return Rendered(
        documents=outputs["documents"]["value"],
        user_data=outputs["user_data"]["value"],
        user_data_bytes={k: int(v) for k, v in outputs["user_data_bytes"]["value"].items()},
        bootstrap_files=outputs["bootstrap_files"]["value"],
        gpu_k3s_config=gpu_config,
    )


def write_files(document: str) -> dict[str, bytes]:
    """write_files of a cloud-config: path => decoded content."""
    config = load_unique(document)
    files: dict[str, bytes] = {}
    for entry in config["write_files"]:
        assert entry.get("encoding") == "b64", f"{entry['path']}: expected b64 encoding"
        files[entry["path"]] = base64.b64decode(entry["content"], validate=True)
    return files


def scripts(document: str) -> Iterator[tuple[str, bytes]]:
    for path, content in write_files(document).items():
        if content.startswith(b"#!"):
            yield path, content


@pytest.fixture(scope="module")
def rendered(terraform_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    base = tmp_path_factory.mktemp("cloud-init")
    tree = copy_terraform_tree(base)
    return render(tree, base / "render", terraform_bin)


# ---- the document -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_cloud_config_starts_with_the_cloud_config_header(rendered: Rendered, role: str) -> None:
    assert rendered.documents[role].splitlines()[0] == "#cloud-config"


@pytest.mark.parametrize("role", ROLES)
def test_cloud_config_parses_without_duplicate_keys(rendered: Rendered, role: str) -> None:
    config = load_unique(rendered.documents[role])

    assert isinstance(config, dict)
    assert set(config) <= TOP_LEVEL_KEYS, f"unexpected keys: {set(config) - TOP_LEVEL_KEYS}"


@pytest.mark.parametrize("role", ROLES)
def test_runcmd_runs_the_bootstrap_script_that_write_files_installs(
    rendered: Rendered, role: str
) -> None:
    config = load_unique(rendered.documents[role])
    files = {entry["path"]: entry for entry in config["write_files"]}

    assert config["runcmd"] == [[BOOTSTRAP_SCRIPT]]
    assert files[BOOTSTRAP_SCRIPT]["permissions"] == "0700"


@pytest.mark.parametrize("role", ROLES)
def test_user_data_is_gzipped_and_within_the_ec2_limit(rendered: Rendered, role: str) -> None:
    raw = base64.b64decode(rendered.user_data[role], validate=True)

    assert gzip.decompress(raw).decode() == rendered.documents[role]
    assert len(raw) == rendered.user_data_bytes[role]
    assert len(raw) <= EC2_USER_DATA_LIMIT


# ---- K3s configuration and the join token -------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_k3s_reads_the_join_token_from_a_file_not_from_user_data(
    rendered: Rendered, role: str
) -> None:
    files = write_files(rendered.documents[role])
    k3s_config = load_unique(files[K3S_CONFIG].decode())
    script = files[BOOTSTRAP_SCRIPT].decode()

    assert k3s_config["token-file"] == "/etc/rancher/k3s/token"
    assert "token" not in k3s_config
    assert "K3S_TOKEN=" not in script
    assert "aws ssm get-parameter" in script
    assert "--with-decryption" in script


def test_server_config_encrypts_secrets_and_keeps_the_kubeconfig_private(
    rendered: Rendered,
) -> None:
    k3s_config = load_unique(write_files(rendered.documents["server"])[K3S_CONFIG].decode())

    assert k3s_config["secrets-encryption"] is True
    assert k3s_config["write-kubeconfig-mode"] == "0600"
    assert "server" not in k3s_config


@pytest.mark.parametrize("role", ["agent", "gpu-agent"])
def test_agents_join_the_server_over_https(rendered: Rendered, role: str) -> None:
    k3s_config = load_unique(write_files(rendered.documents[role])[K3S_CONFIG].decode())

    assert k3s_config["server"] == SERVER_URL


def test_gpu_agent_requires_the_nvidia_runtime_and_is_tainted(rendered: Rendered) -> None:
    files = write_files(rendered.documents["gpu-agent"])
    k3s_config = load_unique(files[K3S_CONFIG].decode())

    assert "readonly REQUIRE_NVIDIA_RUNTIME='true'" in files[BOOTSTRAP_SCRIPT].decode()
    assert k3s_config["node-label"] == ["nvidia.com/gpu.present=true"]
    assert k3s_config["node-taint"] == ["nvidia.com/gpu=present:NoSchedule"]


@pytest.mark.parametrize("role", ROLES)
def test_bootstrap_script_installs_the_pinned_k3s_release(rendered: Rendered, role: str) -> None:
    script = write_files(rendered.documents[role])[BOOTSTRAP_SCRIPT].decode()
    version = re.search(r"^readonly K3S_VERSION='(v1\.\d+\.\d+\+k3s\d+)'$", script, re.M)
    sha256 = re.search(r"^readonly INSTALLER_SHA256='([0-9a-f]{64})'$", script, re.M)

    assert version, "K3S_VERSION is not an exact release"
    assert sha256, "INSTALLER_SHA256 is not a SHA-256"
    tag = version.group(1).replace("+", "%2B")
    assert f"https://raw.githubusercontent.com/k3s-io/k3s/{tag}/install.sh" in script
    assert 'export INSTALL_K3S_VERSION="$K3S_VERSION"' in script
    assert "sha256sum --check" in script


# ---- embedded scripts ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_embedded_scripts_pass_bash_n(rendered: Rendered, role: str, tmp_path: Path) -> None:
    found = list(scripts(rendered.documents[role]))
    assert found, "no script in write_files"
    for path, content in found:
        script = tmp_path / Path(path).name
        script.write_bytes(content)
        result = run(["bash", "-n", script], cwd=tmp_path)
        assert result.returncode == 0, f"{path}:\n{result.stderr}"


@pytest.mark.parametrize("role", ROLES)
def test_embedded_scripts_pass_shellcheck(
    rendered: Rendered, role: str, shellcheck_bin: Path, tmp_path: Path
) -> None:
    for path, content in scripts(rendered.documents[role]):
        script = tmp_path / Path(path).name
        script.write_bytes(content)
        result = run([shellcheck_bin, "--shell=bash", "--severity=style", script], cwd=tmp_path)
        assert result.returncode == 0, f"{path}:\n{result.stdout}"


# ---- auto-deploy manifests ----------------------------------------------------------------

# What the server applies once, in this order: the AppProject the root Application runs in,
# Argo CD's HelmChart, then the root Application (bootstrap/README.md, clusters/README.md).
BOOTSTRAP_FILES = [
    "bootstrap/projects/bootstrap-appproject.yaml",
    "bootstrap/argo-cd/helmchart.yaml",
    "clusters/aws/root-app.yaml",
]


def manifests_written(document: str) -> dict[str, bytes]:
    """The server's auto-deploy folder: file name => content."""
    return {
        path.removeprefix(MANIFEST_DIR): content
        for path, content in write_files(document).items()
        if path.startswith(MANIFEST_DIR)
    }


def root_app_repo_url() -> str:
    app = load_unique((REPO_ROOT / BOOTSTRAP_FILES[-1]).read_text())
    url: str = app["spec"]["source"]["repoURL"]
    return url


def objects(content: bytes) -> list[dict[str, Any]]:
    return [doc for doc in load_all_unique(content.decode()) if doc is not None]


def test_server_applies_exactly_the_named_repository_files_in_order(rendered: Rendered) -> None:
    written = manifests_written(rendered.documents["server"])
    in_order = [rendered.bootstrap_files[name] for name in sorted(rendered.bootstrap_files)]

    assert in_order == BOOTSTRAP_FILES
    assert set(written) == {*rendered.bootstrap_files, RUNTIME_CLASS}


@pytest.mark.parametrize("repo_path", BOOTSTRAP_FILES)
def test_bootstrap_manifest_is_the_repository_file(rendered: Rendered, repo_path: str) -> None:
    """Byte for byte, except the AppProject's repository placeholder (filled like Kustomize)."""
    name = next(n for n, p in rendered.bootstrap_files.items() if p == repo_path)
    written = manifests_written(rendered.documents["server"])[name]
    source = (REPO_ROOT / repo_path).read_bytes()
    url = root_app_repo_url()

    if PLACEHOLDER.encode() not in source:
        assert written == source, f"{name} differs from {repo_path}"
        return
    # clusters/aws/kustomization.yaml (apps/git-source) puts the root's repoURL in sourceRepos.0.
    (expected,) = objects(source)
    assert expected["kind"] == "AppProject" and expected["spec"]["sourceRepos"][0] == PLACEHOLDER
    expected["spec"]["sourceRepos"][0] = url
    assert objects(written) == [expected]
    assert written == source.replace(f"- {PLACEHOLDER}".encode(), f"- {url}".encode())
    assert PLACEHOLDER.encode() not in written


def test_root_application_runs_in_the_project_applied_before_it(rendered: Rendered) -> None:
    written = manifests_written(rendered.documents["server"])
    found = {
        (doc["kind"], doc["metadata"]["name"]): name
        for name, content in written.items()
        for doc in objects(content)
    }
    root_file = found[("Application", "root")]
    (root,) = objects(written[root_file])
    project_file = found[("AppProject", root["spec"]["project"])]

    assert root["spec"]["project"] == "bootstrap"
    assert root["spec"]["source"]["path"] == "clusters/aws"
    assert project_file < root_file, "K3s applies the folder in name order"
    assert ("HelmChart", "argo-cd") in found
    assert ("RuntimeClass", "nvidia") in found


def apply_once(script: str) -> list[str]:
    match = re.search(r"^readonly APPLY_ONCE=\((.*)\)$", script, re.M)
    assert match, "APPLY_ONCE not found in the bootstrap script"
    return shlex.split(match.group(1))


def test_server_hands_the_bootstrap_manifests_over_to_argo_cd(rendered: Rendered) -> None:
    """K3s would re-apply them at every start, over what Argo CD syncs from git."""
    script = write_files(rendered.documents["server"])[BOOTSTRAP_SCRIPT].decode()

    assert apply_once(script) == sorted(rendered.bootstrap_files)
    assert f"readonly MANIFEST_DIR='{MANIFEST_DIR.rstrip('/')}'" in script
    assert 'touch "$MANIFEST_DIR/$name.skip"' in script


@pytest.mark.parametrize("role", ["agent", "gpu-agent"])
def test_agents_get_no_manifests(rendered: Rendered, role: str) -> None:
    document = rendered.documents[role]

    assert not manifests_written(document)
    assert apply_once(write_files(document)[BOOTSTRAP_SCRIPT].decode()) == []


def hand_over(script: str, manifest_dir: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    """Runs the script's variables, functions and hand-over part (not the install) with a fake
    `k3s` whose `kubectl get --filename FILE` succeeds once FILE.applied exists."""
    head, rest = script.split("# ---- join token", 1)
    _, tail = rest.split("# ---- server: hand the install-time manifests", 1)
    head = re.sub(
        r"^readonly MANIFEST_DIR=.*$", f"readonly MANIFEST_DIR='{manifest_dir}'", head, flags=re.M
    )
    head = re.sub(
        r"^readonly APPLY_ONCE_TIMEOUT=.*$",
        f"readonly APPLY_ONCE_TIMEOUT='{timeout}'",
        head,
        flags=re.M,
    )
    bin_dir = manifest_dir.parent / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "k3s"
    fake.write_text('#!/bin/sh\n[ "$1 $2 $3" = "kubectl get --filename" ] && [ -e "$4.applied" ]\n')
    fake.chmod(0o755)
    part = manifest_dir.parent / "hand-over.sh"
    part.write_text(head + "# ----" + tail)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return run(["bash", part], cwd=manifest_dir.parent, env=env, timeout=60)


def test_hand_over_writes_a_skip_file_once_each_manifest_is_applied(
    rendered: Rendered, tmp_path: Path
) -> None:
    script = write_files(rendered.documents["server"])[BOOTSTRAP_SCRIPT].decode()
    manifest_dir = tmp_path / "manifests"
    manifest_dir.mkdir()
    for name in (*rendered.bootstrap_files, RUNTIME_CLASS):
        (manifest_dir / name).touch()
        (manifest_dir / f"{name}.applied").touch()

    result = hand_over(script, manifest_dir, timeout=60)

    assert result.returncode == 0, result.stderr
    skips = {p.name.removesuffix(".skip") for p in manifest_dir.glob("*.skip")}
    assert skips == set(rendered.bootstrap_files), "only the Argo CD-managed files are skipped"


def test_hand_over_fails_without_skipping_what_was_never_applied(
    rendered: Rendered, tmp_path: Path
) -> None:
    script = write_files(rendered.documents["server"])[BOOTSTRAP_SCRIPT].decode()
    manifest_dir = tmp_path / "manifests"
    manifest_dir.mkdir()

    result = hand_over(script, manifest_dir, timeout=0)

    assert result.returncode != 0
    assert "is not applied after 0 s" in result.stderr
    assert not list(manifest_dir.glob("*.skip"))


# ---- planted mistakes ---------------------------------------------------------------------


def test_duplicated_cloud_init_key_is_rejected(terraform_bin: Path, tmp_path: Path) -> None:
    """The coursework bug: a second `runcmd:` silently replaced the one that installed K3s."""
    tree = copy_terraform_tree(tmp_path)
    template = tree / "modules/k3s-cloud-init/templates/cloud-config.yaml.tftpl"
    template.write_text(
        template.read_text().replace(
            "runcmd:\n", "runcmd:\n  - [sh, -c, 'echo preparing']\nruncmd:\n", 1
        )
    )

    document = render(tree, tmp_path / "render", terraform_bin).documents["server"]

    # A plain loader keeps the last runcmd and drops the first without a word.
    assert yaml.safe_load(document)["runcmd"] == [[BOOTSTRAP_SCRIPT]]
    with pytest.raises(DuplicateKeyError, match="duplicate key 'runcmd'"):
        load_unique(document)


def test_shell_syntax_error_in_the_bootstrap_script_is_caught(
    terraform_bin: Path, tmp_path: Path
) -> None:
    tree = copy_terraform_tree(tmp_path)
    template = tree / "modules/k3s-cloud-init/templates/k3s-bootstrap.sh.tftpl"
    template.write_text(template.read_text() + 'if [[ -n "$ROLE" ]]; then\n  log unclosed\n')

    document = render(tree, tmp_path / "render", terraform_bin).documents["agent"]
    script = tmp_path / "k3s-bootstrap"
    script.write_bytes(write_files(document)[BOOTSTRAP_SCRIPT])

    assert run(["bash", "-n", script], cwd=tmp_path).returncode != 0


def test_user_data_over_the_ec2_limit_fails_the_plan(terraform_bin: Path, tmp_path: Path) -> None:
    tree = copy_terraform_tree(tmp_path)
    noise = base64.b64encode(random.Random(20240607).randbytes(24_000)).decode()
    bulky = tmp_path / "bulky.yaml"
    bulky.write_text(
        "".join(f"# {line}\n" for line in textwrap.wrap(noise, 76))
        + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bulky\n"
    )

    with pytest.raises(RenderError, match="EC2 accepts at most 16384"):
        render(tree, tmp_path / "render", terraform_bin, {"zz-bulky.yaml": bulky})


def test_repository_placeholder_left_in_a_bootstrap_manifest_fails_the_plan(
    terraform_bin: Path, tmp_path: Path
) -> None:
    """Only `- from-root-app` list items (AppProject sourceRepos) are filled: an Application
    whose `repoURL: from-root-app` would reach the cluster unfilled stops the plan."""
    tree = copy_terraform_tree(tmp_path)
    manifests = json.dumps(BOOTSTRAP_FILES[:2] + ["apps/platform/external-secrets.yaml"])

    with pytest.raises(RenderError, match="still names the repository"):
        render(
            tree, tmp_path / "render", terraform_bin, variables=[f"bootstrap_manifests={manifests}"]
        )
