"""Argo CD's notifications controller (enabled in bootstrap/argo-cd/helmchart.yaml) in the
simulation: once the tree is installed, the team's webhook has heard that each Application
was deployed, in the JSON body our template gives. The webhook URLs come from the Secret
argocd-notifications-secret that clusters/local/create-secrets.sh writes; they point at the
session's receiver. A failed sync reaching on-call is planted in test_planted.py."""

from __future__ import annotations

import json
from typing import Any

from gpu_analytics_tools.testing.cluster_sim import Installed, report


def deployed(received: list[tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        body["application"]: body for path, body in received
        if path == "/team" and body.get("event") == "deployed"
    }  # fmt: skip


def test_every_application_is_announced_as_deployed_to_the_team(installed: Installed) -> None:
    apps = installed.sim.get_json("applications.argoproj.io", "-n", "argocd")["items"]
    wanted = {app["metadata"]["name"] for app in apps}
    received = installed.sim.webhooks.wait(120, until=lambda got: wanted <= set(deployed(got)))
    messages = deployed(received)
    report("team received, for pipeline: " + json.dumps(messages.get("pipeline"), indent=1))
    assert sorted(wanted - set(messages)) == []
    for name in wanted:
        body = messages[name]
        assert body["sync"] == "Synced" and body["health"] == "Healthy", body
        assert len(body["revision"]) == 40  # the git commit deployed
        assert body["url"] == f"http://localhost:8080/applications/{name}"
    # Deployments are news for the team, never a page.
    assert not [b for path, b in received if path == "/on-call" and b.get("event") == "deployed"]


def test_the_secret_holds_the_webhook_urls_not_git(installed: Installed) -> None:
    secret = installed.sim.get_json("secret", "-n", "argocd", "argocd-notifications-secret")
    assert sorted(secret["data"]) == [
        "on-call-slack-url", "on-call-webhook-url", "team-slack-url", "team-webhook-url",
    ]  # fmt: skip
    helmchart = (installed.sim.sim.layout.checkout / "bootstrap/argo-cd/helmchart.yaml").read_text()
    assert "$on-call-webhook-url" in helmchart and "127.0.0.1" not in helmchart
