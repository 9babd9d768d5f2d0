"""Generate standalone Kubernetes JSON schemas for kubeconform from kubernetes-validate.

The kubernetes-validate package ships one schema per kind for each Kubernetes release, but
each file carries an https ``$id`` and absolute ``/api/_definitions.json#/$defs/...`` refs into
one shared definitions file, so a validator resolving them offline fails. This script writes
one release's schemas in kubeconform's layout, each file standalone: the definitions it
reaches are copied into its own ``$defs`` and every ref becomes the local ``#/$defs/...``.

    .tools/schemas/kubernetes/v1.36.0-standalone-strict/deployment-apps-v1.json

kubeconform then reads them with ``-kubernetes-version 1.36.0 -strict`` and the schema location

    .tools/schemas/kubernetes/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/
    {{ .ResourceKind }}{{ .KindSuffix }}.json

(one string, without the line break). Both flavours are written: ``-standalone-strict``
(additionalProperties: false, used by ``make validate``) and ``-standalone``. Standalone files
compile about three times faster than files sharing the 1.3 MB definitions file. Idempotent:
a stamp file records the source package version and the file count; a second run with the
same inputs does nothing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from gpu_analytics_tools.gitops import k3s
from gpu_analytics_tools.stack.paths import repo_root

LOG = logging.getLogger("k8s_schemas")

DEFAULT_OUT = repo_root() / ".tools" / "schemas" / "kubernetes"
DEFAULT_VERSION = k3s.schema_version()
STAMP = ".generated"
# Bumped whenever the output format changes, so existing folders are regenerated.
FORMAT = 2
DEFINITIONS = "_definitions.json"
ABSOLUTE_DEFS = "/api/_definitions.json#"
# kubernetes-validate's folder suffix -> kubeconform's folder suffix
FLAVOURS = {"-local-strict": "-standalone-strict", "-local": "-standalone"}


def package_schema_dir() -> Path:
    """The kubernetes-json-schema folder inside the installed kubernetes_validate package."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        raise SystemExit(
            "kubernetes-validate is not installed in this Python; run `make setup` first"
        )
    return Path(spec.origin).parent / "kubernetes-json-schema"


def available_versions(schema_dir: Path) -> list[str]:
    """Kubernetes versions the package ships, e.g. ['1.35.0', '1.36.0']."""
    names = (p.name for p in schema_dir.iterdir() if p.is_dir() and p.name.endswith("-local"))
    return sorted(n.removeprefix("v").removesuffix("-local") for n in names)


def local_ref(ref: str) -> str | None:
    """The definition name of a ref into the shared definitions file, else None."""
    for prefix in (ABSOLUTE_DEFS, "#"):
        if ref.startswith(prefix + "/$defs/"):
            return ref.removeprefix(prefix + "/$defs/")
    return None


def referenced(node: Any) -> set[str]:
    """Names of the definitions ``node`` refers to directly."""
    if isinstance(node, dict):
        found: set[str] = set()
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and (name := local_ref(value)):
                found.add(name)
            else:
                found |= referenced(value)
        return found
    if isinstance(node, list):
        return set().union(*(referenced(item) for item in node)) if node else set()
    return set()


def rewrite_refs(node: Any) -> Any:
    """Return ``node`` with every definitions ref made local (``#/$defs/...``), ``$id`` dropped."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$id":
                continue  # an https $id would make refs resolve against kubernetes.io
            if key == "$ref" and isinstance(value, str) and (name := local_ref(value)):
                out[key] = f"#/$defs/{name}"
            else:
                out[key] = rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [rewrite_refs(item) for item in node]
    return node


def standalone(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every definition it reaches, transitively, in its own ``$defs``."""
    reached: set[str] = set()
    pending = referenced(schema)
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending |= referenced(definitions[name]) - reached
    result: dict[str, Any] = rewrite_refs(schema)
    if reached:
        result["$defs"] = {name: rewrite_refs(definitions[name]) for name in sorted(reached)}
    return result


def convert_folder(src: Path, dest: Path) -> int:
    """Write every schema of ``src`` standalone into ``dest``; return the file count."""
    definitions = json.loads((src / DEFINITIONS).read_text(encoding="utf-8"))["$defs"]
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    count = 0
    for path in sorted(src.glob("*.json")):
        if path.name == DEFINITIONS:
            continue
        schema = json.loads(path.read_text(encoding="utf-8"))
        (tmp / path.name).write_text(json.dumps(standalone(schema, definitions)), encoding="utf-8")
        count += 1
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return count


def generate(out_dir: Path, version: str, *, force: bool = False) -> list[Path]:
    """Generate both flavours for ``version`` under ``out_dir``; return the folders written."""
    schema_dir = package_schema_dir()
    versions = available_versions(schema_dir)
    if version not in versions:
        raise SystemExit(
            f"kubernetes-validate has no schemas for {version}; it ships {', '.join(versions)}"
        )
    package_version = importlib.metadata.version("kubernetes-validate")
    written: list[Path] = []
    for src_suffix, dest_suffix in FLAVOURS.items():
        src = schema_dir / f"v{version}{src_suffix}"
        dest = out_dir / f"v{version}{dest_suffix}"
        expected = (
            f"format {FORMAT} kubernetes-validate {package_version} "
            f"files {len(list(src.glob('*.json')))}"
        )
        stamp = dest / STAMP
        if not force and stamp.is_file() and stamp.read_text(encoding="utf-8") == expected:
            LOG.info("%s is up to date", dest)
            continue
        count = convert_folder(src, dest)
        (dest / STAMP).write_text(expected, encoding="utf-8")
        LOG.info("wrote %d schemas to %s", count, dest)
        written.append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", default=DEFAULT_VERSION, help="e.g. 1.36.0")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="schema root folder")
    parser.add_argument("--force", action="store_true", help="regenerate even when up to date")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="k8s_schemas: %(message)s",
        stream=sys.stderr,
    )
    generate(args.out, args.kubernetes_version, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
