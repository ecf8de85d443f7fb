"""The benchmarks' targeting rules: 10 rule groups, 20 constraints, and contexts for them.

Issue 20's mix: 2 REGEX, 2 SEMVER, 1 IN of 1,000 values and 1 IN_CIDR among the 20
constraints, on the attributes a mobile or web client sends. `contexts` are drawn so that
about half the requests match some group.
"""

from __future__ import annotations

import random

__all__ = ["AUDIENCES", "GROWTHBOOK_CONDITIONS", "RULES", "contexts"]

COUNTRIES = ["DE", "AT", "CH", "FR", "US", "GB", "JP", "BR"]
ACCOUNTS = [f"acct-{i:04d}" for i in range(1_000)]

RULES: dict[str, list[list[dict[str, object]]]] = {
    "dach": [[{"contextName": "country", "operator": "IN", "values": ["DE", "AT", "CH"]}]],
    "new-app": [[{"contextName": "version", "operator": "SEMVER_GTE", "value": "2.1.0"}]],
    "old-app": [
        [{"contextName": "version", "operator": "SEMVER_LT", "value": "1.5.0"}],
        [{"contextName": "platform", "operator": "STR_STARTS_WITH", "values": ["ios-15"]}],
    ],
    "staff": [
        [{"contextName": "email", "operator": "REGEX", "value": r"@example\.(com|org)$"}],
        [{"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.net"]}],
    ],
    "testers": [
        [
            {
                "contextName": "email",
                "operator": "REGEX",
                "value": r"^qa[+-]",
                "caseInsensitive": True,
            },
            {"contextName": "plan", "operator": "NOT_IN", "values": ["free"]},
        ]
    ],
    "key-accounts": [[{"contextName": "account", "operator": "IN", "values": ACCOUNTS}]],
    "office": [
        [
            {"contextName": "remoteAddress", "operator": "IN_CIDR", "values": ["10.0.0.0/8"]},
            {"contextName": "plan", "operator": "IN", "values": ["team", "enterprise"]},
        ]
    ],
    "heavy-users": [
        [
            {"contextName": "sessions", "operator": "NUM_GTE", "value": "100"},
            {"contextName": "plan", "operator": "IN", "values": ["pro", "team"]},
        ],
        [{"contextName": "sessions", "operator": "NUM_GT", "value": "1000"}],
    ],
    "holiday": [
        [
            {
                "contextName": "currentTime",
                "operator": "DATE_AFTER",
                "value": "2026-12-20T00:00:00Z",
            },
            {
                "contextName": "currentTime",
                "operator": "DATE_BEFORE",
                "value": "2027-01-06T00:00:00Z",
            },
            {"contextName": "country", "operator": "IN", "values": ["DE", "AT"]},
        ]
    ],
    "android-beta": [
        [
            {"contextName": "platform", "operator": "STR_STARTS_WITH", "values": ["android"]},
            {"contextName": "channel", "operator": "IN", "values": ["beta"]},
            {
                "contextName": "locale",
                "operator": "STR_CONTAINS",
                "values": ["de"],
                "caseInsensitive": True,
            },
        ]
    ],
}
# The same conditions in GrowthBook's language (MongoDB-style), for bench/rules_bench.py.
# GrowthBook has no CIDR operator: "office" tests the address with an equivalent regex, and
# no clock: "holiday" compares currentTime as ISO text (the contexts give it).
GROWTHBOOK_CONDITIONS: dict[str, dict[str, object]] = {
    "dach": {"country": {"$in": ["DE", "AT", "CH"]}},
    "new-app": {"version": {"$vgte": "2.1.0"}},
    "old-app": {"$or": [{"version": {"$vlt": "1.5.0"}}, {"platform": {"$regex": "^ios-15"}}]},
    "staff": {
        "$or": [
            {"email": {"$regex": r"@example\.(com|org)$"}},
            {"email": {"$regex": r"@example\.net$"}},
        ]
    },
    "testers": {"email": {"$regex": "(?i)^qa[+-]"}, "plan": {"$nin": ["free"]}},
    "key-accounts": {"account": {"$in": ACCOUNTS}},
    "office": {"remoteAddress": {"$regex": r"^10\."}, "plan": {"$in": ["team", "enterprise"]}},
    "heavy-users": {
        "$or": [
            {"sessions": {"$gte": 100}, "plan": {"$in": ["pro", "team"]}},
            {"sessions": {"$gt": 1000}},
        ]
    },
    "holiday": {
        "currentTime": {"$gt": "2026-12-20T00:00:00Z", "$lt": "2027-01-06T00:00:00Z"},
        "country": {"$in": ["DE", "AT"]},
    },
    "android-beta": {
        "platform": {"$regex": "^android"},
        "channel": {"$in": ["beta"]},
        "locale": {"$regex": "(?i)de"},
    },
}
AUDIENCES = ("dach", "new-app", "key-accounts")
"""The groups three rollouts are limited to."""


def contexts(count: int, seed: int = 7) -> list[dict[str, object]]:
    """`count` OFREP-style contexts over the rules' attributes."""
    rng = random.Random(seed)
    return [
        {
            "targetingKey": f"user-{rng.randrange(1_000_000)}",
            "country": rng.choice(COUNTRIES),
            "version": f"{rng.randrange(1, 4)}.{rng.randrange(10)}.{rng.randrange(10)}",
            "email": rng.choice(["ann@example.com", "QA+bob@shop.io", "eve@mail.net"]),
            "plan": rng.choice(["free", "pro", "team", "enterprise"]),
            "account": rng.choice([*ACCOUNTS[:5], "acct-x", "acct-y"]),
            "remoteAddress": rng.choice(["10.1.2.3", "192.168.1.1", "2001:db8::1"]),
            "sessions": rng.randrange(2_000),
            "platform": rng.choice(["android-14", "ios-17", "web"]),
            "channel": rng.choice(["beta", "stable"]),
            "locale": rng.choice(["de-DE", "en-US", "fr-FR"]),
            "currentTime": rng.choice(["2026-12-24T12:00:00Z", "2027-02-01T12:00:00Z"]),
        }
        for _ in range(count)
    ]
