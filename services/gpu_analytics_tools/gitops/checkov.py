"""checkov on every rendered manifest of the tree (not the charts'), with the explicit skip
list CHECKOV_SKIPS."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import yaml

from gpu_analytics_tools.gitops.chart_releases import dig
from gpu_analytics_tools.gitops.findings import Finding
from gpu_analytics_tools.gitops.tree import ClusterResult, Report, Resource, Tools

# checkov checks skipped for every rendered manifest, each with the reason it does not apply.
CHECKOV_SKIPS: dict[str, str] = {
    "CKV_K8S_15": "imagePullPolicy stays IfNotPresent: tags are pinned and never re-pushed",
    "CKV_K8S_43": "images are pinned by version tag, not digest: promotion edits a readable tag",
    "CKV_K8S_35": "secrets reach processes as env vars: the services' configuration contract "
    "(README's Configuration, MONGODB_URI) and the mongo image's MONGO_INITDB_* variables",
    "CKV_K8S_40": "UIDs are the images' own users (kafka 1000, mongo 999), not >= 10000; "
    "ours run as 10001",
}


def run_checkov(results: list[ClusterResult], tools: Tools, report: Report) -> None:
    if tools.checkov is None:
        report.findings.append(Finding("checkov", "checkov", "not found (run `make setup`)"))
        return
    with tempfile.TemporaryDirectory(prefix="validate-checkov-") as tmp:
        files = 0
        for result in results:
            by_path: dict[str, list[Resource]] = {}
            for path, res in result.rendered:
                by_path.setdefault(path, []).append(res)
            for path, docs in by_path.items():
                target = Path(tmp) / result.name / (path.replace("/", "__") + ".yaml")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
                files += 1
        proc = subprocess.run(
            [
                tools.checkov,
                "--directory",
                tmp,
                "--framework",
                "kubernetes",
                "--quiet",
                "--compact",
                "--output",
                "json",
                "--skip-check",
                ",".join(CHECKOV_SKIPS),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report.findings.append(Finding("checkov", "checkov", proc.stderr.strip()[-500:]))
        return
    reports = data if isinstance(data, list) else [data]
    for rep in reports:
        summary = rep.get("summary") or {}
        for key in ("passed", "failed", "parsing_errors"):
            report.checkov[key] += int(summary.get(key, 0))
        for failed in dig(rep, "results", "failed_checks") or []:
            where = f"{Path(str(failed.get('file_path'))).name} {failed.get('resource')}"
            report.findings.append(
                Finding("checkov", where, f"{failed.get('check_id')} {failed.get('check_name')}")
            )
    report.checkov["files"] = files
    if report.checkov["parsing_errors"]:
        report.findings.append(Finding("checkov", "checkov", "parsing errors"))
