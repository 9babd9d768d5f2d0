"""make validate's check of Argo CD's notification settings (gitops/argocd_notifications.py):
ours pass, and each kind of mistake the controller would only meet at run time is found."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gpu_analytics_tools.gitops.argocd_notifications import (
    check,
    notifications_values,
    secret_keys,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def values() -> dict[str, Any]:
    return copy.deepcopy(notifications_values(REPO))


def messages(values: dict[str, Any]) -> list[str]:
    return [f.message for f in check(values, secret_keys(REPO))]


def test_ours_pass(values: dict[str, Any]) -> None:
    assert values["enabled"] is True
    assert messages(values) == []
    assert secret_keys(REPO) == {
        "on-call-webhook-url", "team-webhook-url", "on-call-slack-url", "team-slack-url",
    }  # fmt: skip


def test_a_trigger_that_does_not_parse_is_found(values: dict[str, Any]) -> None:
    values["triggers"]["trigger.on-deployed"] = (
        "- description: out: now\n  when: 'true'\n  send: [app-deployed]\n"
    )
    assert any("does not parse" in m for m in messages(values))


@pytest.mark.parametrize(
    ("plant", "message"),
    [
        (lambda v: v["subscriptions"][0]["triggers"].append("on-nothing"), "no trigger on-nothing"),
        (lambda v: v["subscriptions"][1]["recipients"].append("pager"), "no service pager"),
        (lambda v: v["templates"].pop("template.app-deployed"), "no template app-deployed"),
        (
            lambda v: v["notifiers"].update({"service.webhook.x": "url: $not-in-the-secret\n"}),
            "$not-in-the-secret is no key",
        ),
        (
            lambda v: v["notifiers"].update({"service.webhook.on-call": "headers: []\n"}),
            "no url",
        ),
    ],
)
def test_each_planted_mistake_is_found(values: dict[str, Any], plant: Any, message: str) -> None:
    plant(values)
    assert any(message in m for m in messages(values)), messages(values)
