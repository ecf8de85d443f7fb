"""Edge servers (issue 11, items 6 and 9) as real processes: an admin on the test's database,
an edge following it, a second edge following the first. Writes reach the second edge, which
readers can wait for with X-Flaggery-Min-Revision; edges refuse writes and admin reads; with the
admin down they keep serving their last snapshot (stale on /readyz), then resync."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from flaggery.engine.state_codec import decode_state
from tests.http.processes import flaggery_command, flaggery_process, free_port, wait_for

TOKENS = "ops:admin:admin-secret edge:reader:reader-secret"
ADMIN = {"Authorization": "Bearer admin-secret"}
READER = "reader-secret"
MIN = "X-Flaggery-Min-Revision"


@pytest.mark.slow
def test_a_two_level_edge_tree(db_url: str, tmp_path: Path) -> None:
    admin_args = ["--admin", "--db-url", db_url, "--db-auto-upgrade"]
    tokens = {"FLAGGERY_TOKENS": TOKENS}
    with contextlib.ExitStack() as stack:
        admin = stack.enter_context(flaggery_process(admin_args, tmp_path, tokens))
        admin.client.headers.update(ADMIN)
        admin.client.put("/v1/buckets", params={"amount": 2}).raise_for_status()
        admin.client.post("/v1/subjects/1", params={"weight": 1}).raise_for_status()
        edge_env = {**tokens, "FLAGGERY_UPSTREAM_TOKEN": READER}
        first = stack.enter_context(
            flaggery_process(["--upstream", str(admin.client.base_url)], tmp_path, edge_env)
        )
        second = stack.enter_context(
            flaggery_process(["--upstream", str(first.client.base_url)], tmp_path, edge_env)
        )
        admin.client.post("/v1/features/f").raise_for_status()
        write = admin.client.post("/v1/features/f/variants/A", params={"make_default": "true"})
        revision = write.headers["x-flaggery-revision"]
        flags = second.client.get("/v1/subjects/1/flags", headers={MIN: revision})
        assert flags.json() == {"flags": {"f": "A"}}
        # The salt travels with the snapshot: an edge hashes every key as its upstream does.
        for key in ("visitor-1", "ana@example.com", "9", "a/b c"):
            path = f"/v1/keys/{quote(key, safe='')}/explain"
            at_edge, at_admin = second.client.get(path).json(), admin.client.get(path).json()
            assert (at_edge["key_hash"], at_edge["bucket"]) == (
                at_admin["key_hash"], at_admin["bucket"],
            )  # fmt: skip
            assert at_edge["hashed"] is True

        # Edges are read-only and have no database.
        refused = second.client.post("/v1/features/g", headers=ADMIN)
        assert refused.status_code == 423 and refused.json()["exception"]["name"] == "NotAdmin"
        history = second.client.get("/v1/changes", headers={"Authorization": f"Bearer {READER}"})
        assert history.status_code == 423

        admin.process.terminate()
        admin.process.wait(15)
        wait_for(lambda: first.client.get("/readyz").json()["stale"])
        assert second.client.get("/v1/subjects/1/flags").json() == {"flags": {"f": "A"}}

        again = stack.enter_context(flaggery_process(admin_args, tmp_path, tokens, admin.port))
        again.client.headers.update(ADMIN)
        write = again.client.post("/v1/features/f/variants/B")
        revision = write.headers["x-flaggery-revision"]
        wait_for(lambda: not first.client.get("/readyz").json()["stale"], 15)
        reader = {"Authorization": f"Bearer {READER}", MIN: revision}
        state = decode_state(second.client.get("/v1/snapshot", headers=reader).content)
        assert state.revision == int(revision) and state.features["f"].variants == ("A", "B")


BELOW = "be10w5ecre7be10w5ecre7be10w5ecre7"  # off loopback: 32 characters, 8 different


def test_an_edge_does_not_reexpose_what_its_upstream_protects(db_url: str, tmp_path: Path) -> None:
    """The edge command in the docs without FLAGGERY_TOKENS is refused at start (exit 2, naming
    the variables); with them, the edge on 0.0.0.0 wants a reader token for the snapshot and
    the stream, as its upstream does, and serves flags to anyone."""
    admin_args = ["--admin", "--db-url", db_url, "--db-auto-upgrade"]
    with flaggery_process(admin_args, tmp_path, {"FLAGGERY_TOKENS": TOKENS}) as admin:
        admin.client.headers.update(ADMIN)
        admin.client.put("/v1/buckets", params={"amount": 2}).raise_for_status()
        admin.client.post("/v1/subjects/1", params={"weight": 1}).raise_for_status()
        edge_args = ["--upstream", str(admin.client.base_url), "--host", "0.0.0.0"]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("FLAGGERY_")}
        refused = subprocess.run(
            [*flaggery_command(), *edge_args, "--port", str(free_port())],
            env={**clean, "FLAGGERY_UPSTREAM_TOKEN": READER},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 2, refused.stderr
        assert "FLAGGERY_UPSTREAM_TOKEN but no token of its own" in refused.stderr
        assert "FLAGGERY_TOKENS or FLAGGERY_TOKENS_FILE" in refused.stderr

        edge_env = {
            "FLAGGERY_TOKENS": f"below:reader:{BELOW}",
            "FLAGGERY_UPSTREAM_TOKEN": READER,
        }
        with flaggery_process(edge_args, tmp_path, edge_env) as edge:
            for path in ("/v1/snapshot", "/v1/stream", "/v1/changes"):
                assert edge.client.get(path).status_code == 401, path
            below = {"Authorization": f"Bearer {BELOW}"}
            assert edge.client.get("/v1/snapshot", headers=below).status_code == 200
            assert edge.client.get("/v1/subjects/1/flags").json() == {"flags": {}}
