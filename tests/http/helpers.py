"""Assertions shared by the HTTP tests."""

from __future__ import annotations

from typing import Any

import httpx

OK = {"success": True}


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a successful response with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def fails(response: httpx.Response, status: int, name: str) -> str:
    """Assert the 0.2.1 error envelope with ``status`` and ``name``; return the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"exception"}
    assert set(body["exception"]) == {"name", "message"}
    assert body["exception"]["name"] == name, body
    message = body["exception"]["message"]
    assert isinstance(message, str) and message
    return message


async def seed_basics(client: httpx.AsyncClient) -> None:
    """4 buckets, subjects 1..8 (weight = id), feature 'f' with variants A (default) and B."""
    ok(await client.put("/v1/buckets", params={"amount": 4}))
    for subject_id in range(1, 9):
        ok(await client.post(f"/v1/subjects/{subject_id}", params={"weight": subject_id}), 201)
    ok(await client.post("/v1/features/f"), 201)
    ok(await client.post("/v1/features/f/variants/A", params={"make_default": "true"}), 201)
    ok(await client.post("/v1/features/f/variants/B"), 201)
