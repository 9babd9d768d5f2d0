"""The repository Argo CD syncs in the simulation: the commit under test plus one commit
that does what a fork does before installing (point the roots at its own git URL and
branch), served by `git daemon` on loopback.

Chart Applications read chart repositories that are not reachable here. With a folder of
packaged charts (CHARTS_DIR) they point at a chart repository served from it on loopback;
without one they are left out by tests/cluster/no-charts (a Kustomize component that says
so in its own file) and the monitoring CRDs their first wave installs are stand-ins.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from gpu_analytics_tools.cluster_sim.layout import BRANCH, CHARTS_URL, GIT_URL

NO_CHARTS_COMPONENT = "tests/cluster/no-charts"


WORKTREE = "worktree"


def git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def snapshot(source: Path) -> str:
    """A commit of the working tree as it is (tracked and untracked files that git does not
    ignore), on top of HEAD, made with a scratch index: HEAD, the index and the files of
    the checkout are left as they are."""
    with tempfile.TemporaryDirectory(prefix="cluster-sim-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git("read-tree", "HEAD", cwd=source, env=env)
        git("add", "-A", cwd=source, env=env)
        tree = git("write-tree", cwd=source, env=env)
    return git(
        "-c", "user.name=cluster-sim", "-c", "user.email=cluster-sim@localhost",
        "commit-tree", tree, "-p", "HEAD", "-m", "cluster-sim: the working tree", cwd=source,
    )  # fmt: skip


def _rewrite_roots(checkout: Path) -> list[str]:
    changed = []
    for root in sorted(checkout.glob("clusters/*/root-app.yaml")):
        text = root.read_text()
        new = re.sub(r"(?m)^(    repoURL:) \S+$", rf"\1 {GIT_URL}", text, count=1)
        new = re.sub(r"(?m)^(    targetRevision:) \S+$", rf"\1 {BRANCH}", new, count=1)
        if new != text:
            root.write_text(new)
            changed.append(str(root.relative_to(checkout)))
    return changed


def _substitute(files: Iterable[Path], pattern: str, replacement: str) -> None:
    for path in files:
        text = path.read_text()
        new = re.sub(pattern, replacement, text)
        if new != text:
            path.write_text(new)


def _use_local_charts(checkout: Path) -> None:
    """Every chart source's https repoURL becomes the loopback chart repository, and the
    AppProjects permit it in place of the chart repositories they list."""
    # `spec.source` (repoURL: ...) and list items of `spec.sources` (- repoURL: ...).
    _substitute(
        checkout.glob("apps/**/*.yaml"),
        r"(?m)^(\s+(?:- )?repoURL:) https://\S+(\n\s+chart:)",
        rf"\1 {CHARTS_URL}\2",
    )
    # sourceRepos lists the git repository (from-root-app) and then the chart repositories,
    # all https: they become one entry.
    _substitute(
        checkout.glob("bootstrap/projects/*.yaml"),
        r"(?m)^(\s+- )https://\S+\n(?:\s+- https://\S+\n)*",
        rf"\1{CHARTS_URL}\n",
    )


def _leave_out_charts(checkout: Path) -> None:
    for kustomization in [checkout / "clusters" / "local" / "kustomization.yaml"]:
        text = kustomization.read_text()
        if f"- ../../{NO_CHARTS_COMPONENT}\n" in text:
            continue
        new = text.replace("components:\n", f"components:\n  - ../../{NO_CHARTS_COMPONENT}\n", 1)
        if new == text:
            raise RuntimeError(
                f"{kustomization}: no components: list to add {NO_CHARTS_COMPONENT} to"
            )
        kustomization.write_text(new)


def prepare(source: Path, revision: str, bare: Path, checkout: Path, *, charts: bool) -> str:
    """Put `revision` of `source` (WORKTREE: the working tree as it is) into the bare
    repository `bare`, commit the simulation's changes on top in `checkout` on branch
    cluster-sim, push that; return the commit Argo CD syncs."""
    if revision == WORKTREE:
        commit = snapshot(source)
    else:
        commit = git("rev-parse", "--verify", f"{revision}^{{commit}}", cwd=source)
    git("init", "--quiet", "--bare", str(bare), cwd=source)
    git("push", "--quiet", str(bare), f"{commit}:refs/heads/source", cwd=source)
    git("clone", "--quiet", "--no-checkout", str(bare), str(checkout), cwd=source)
    git("checkout", "--quiet", "-b", BRANCH, commit, cwd=checkout)
    _rewrite_roots(checkout)
    if charts:
        _use_local_charts(checkout)
    else:
        _leave_out_charts(checkout)
    git("add", "-A", cwd=checkout)
    git(
        "-c", "user.name=cluster-sim", "-c", "user.email=cluster-sim@localhost",
        "commit", "--quiet", "--allow-empty", "-m",
        f"cluster-sim: serve {commit[:12]} from {GIT_URL}", cwd=checkout,
    )  # fmt: skip
    git("push", "--quiet", "origin", BRANCH, cwd=checkout)
    return git("rev-parse", "HEAD", cwd=checkout)
