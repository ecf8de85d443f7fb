"""The names of the admin operations, as the change log records them (its ``operation``
column), so a filter on them (a webhook's) can refuse a name no write ever records.

A write records the name of the admin method that made it (``kill_switch``,
``set_rollout_proportion``); a revert records ``revert <revision>`` and a feature restore
``restore <feature> as of <revision>``: their first word is the operation. The list is
checked against every name the store's code passes to `Database.write`
(tests/store/test_operation_names.py): an operation added without its name here fails there.
"""

from __future__ import annotations

__all__ = ["WRITE_OPERATIONS", "operation_word"]

WRITE_OPERATIONS = frozenset(
    {
        "add_abtest",
        "add_feature",
        "add_group",
        "add_group_override",
        "add_rollout",
        "add_subject",
        "add_subject_to_group",
        "add_subjects",
        "add_subjects_to_group",
        "add_variant",
        "advance_plan",
        "apply_schedule",
        "cancel_schedule",
        "create_plan",
        "create_schedule",
        "edit_schedule",
        "increase_buckets",
        "kill_switch",
        "pause_plan",
        "restore",
        "resume_plan",
        "revert",
        "rm_abtest",
        "rm_feature",
        "rm_group",
        "rm_group_override",
        "rm_group_rule",
        "rm_plan",
        "rm_rollout",
        "rm_subject",
        "rm_subject_from_group",
        "rm_variant",
        "rollback_plan",
        "set_abtest_audience",
        "set_abtest_auto_stop",
        "set_default_feature_variant",
        "set_group_rule",
        "set_rollout",
        "set_rollout_audience",
        "set_rollout_proportion",
        "set_rollout_variant",
        "set_subject_weight",
        "set_variant_value",
        "skip_plan",
        "stop_abtest",
        "unkill",
    }
)
"""Every operation name a write records (the first word, for ``revert`` and ``restore``)."""


def operation_word(recorded: str) -> str:
    """The operation of a change-log row's ``operation`` text: its first word (``revert 12``
    -> ``revert``; every other operation is one word)."""
    return recorded.partition(" ")[0]
