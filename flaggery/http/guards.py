"""Guards: ``POST /v1/guard/alertmanager`` takes Prometheus Alertmanager's webhook payload
unchanged (version 4: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config)
and acts on the features its firing alerts name.

An alert acts when its ``status`` is ``firing`` and its labels name a feature
(``flaggery_feature``); ``flaggery_action`` chooses the action (``pause`` the feature's release
plan, ``rollback`` it to 0%, or ``kill``: its kill switch), else FLAGGERY_GUARD_ACTION. A resolved
alert does nothing: a person resumes. Each action is one ordinary write, by the guard token's
name, in history and the stream; repeating it (Alertmanager re-sends a firing group every
``repeat_interval``) writes nothing more (a paused plan stays paused, a killed feature killed).

The answer lists each alert's outcome; an alert naming an unknown feature or a plan in the
wrong state is reported there (200, so Alertmanager does not retry what cannot succeed). An
outage answers 503, which Alertmanager retries.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from flaggery import errors as e
from flaggery.http.endpoint import Call, Operation
from flaggery.settings import GUARD_ACTIONS
from flaggery.store.repository import AsyncFlaggery

__all__ = ["ACTION_LABEL", "FEATURE_LABEL", "OPERATIONS"]

FEATURE_LABEL = "flaggery_feature"
ACTION_LABEL = "flaggery_action"


class Alert(msgspec.Struct, frozen=True):
    """One alert of the payload; the fields flaggery reads (others are accepted and ignored)."""

    status: str
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    fingerprint: str = ""


class AlertmanagerPayload(msgspec.Struct, frozen=True, rename="camel"):
    """Alertmanager's webhook body (version 4), as it sends it (camelCase names); only
    ``alerts`` is read."""

    alerts: list[Alert]
    version: str = "4"
    status: str = ""
    receiver: str = ""
    group_key: str = ""
    group_labels: dict[str, Any] = msgspec.field(default_factory=dict)
    common_labels: dict[str, Any] = msgspec.field(default_factory=dict)


class AlertOutcome(msgspec.Struct, frozen=True, omit_defaults=True):
    fingerprint: str
    status: str
    """The alert's status: firing or resolved."""
    outcome: Literal["done", "ignored", "refused"]
    """done: the action was applied (or was in effect already); ignored: resolved, or no
    flaggery_feature label; refused: see ``error``."""
    feature: str | None = None
    action: str | None = None
    error: str | None = None
    """The error's name and message (FeatureNotFound, PlanNotFound, PlanStateConflict, ...)."""


class GuardResult(msgspec.Struct, frozen=True):
    alerts: list[AlertOutcome]


async def _act(store: AsyncFlaggery, action: str, feature: str, alert: Alert) -> None:
    reason = f"alert {alert.labels.get('alertname', '?')} firing ({alert.fingerprint})"
    if action == "kill":
        await store.kill_switch(feature)
    elif action == "pause":
        await store.pause_plan(feature, reason)
    else:
        await store.rollback_plan(feature, -1)


async def _outcome(call: Call[None, AlertmanagerPayload], alert: Alert) -> AlertOutcome:
    feature = alert.labels.get(FEATURE_LABEL)
    if alert.status != "firing" or feature is None:
        return AlertOutcome(alert.fingerprint, alert.status, "ignored", feature)
    action = alert.labels.get(ACTION_LABEL, call.services.settings.guard_action)
    if action not in GUARD_ACTIONS:
        error = f"ValidationError: {ACTION_LABEL} is one of {', '.join(GUARD_ACTIONS)}."
        return AlertOutcome(alert.fingerprint, alert.status, "refused", feature, action, error)
    try:
        await _act(call.store, action, feature, alert)
    except (e.NotFound, e.Conflict, e.InvalidInput) as refused:
        error = f"{refused.name}: {refused.message}"
        return AlertOutcome(alert.fingerprint, alert.status, "refused", feature, action, error)
    return AlertOutcome(alert.fingerprint, alert.status, "done", feature, action)


async def alertmanager(call: Call[None, AlertmanagerPayload]) -> GuardResult:
    return GuardResult([await _outcome(call, alert) for alert in call.body.alerts])


OPERATIONS = (
    Operation("POST", "/v1/guard/alertmanager", alertmanager, GuardResult,
              "Guard: pause, roll back or kill a feature when an alert fires", "guards",
              body=AlertmanagerPayload, guard=True, errors=(e.ValidationError,),
              description="Point an Alertmanager webhook receiver here with a guard token "
              "(http_config.authorization). Each firing alert whose labels name a feature "
              f"({FEATURE_LABEL}) gets the action {ACTION_LABEL} names (pause, rollback, kill) "
              "or FLAGGERY_GUARD_ACTION; resolved alerts do nothing. One write per action; "
              "each alert's outcome is listed."),
)  # fmt: skip
