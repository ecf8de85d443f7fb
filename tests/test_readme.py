"""The README's commands and code, checked against what they claim."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from flaggery.core import Flaggery

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def python_api_snippet() -> str:
    section = README.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no Python block under '## Python API'"
    return match.group(1)


def test_the_python_api_snippet_runs_as_written(tmp_path: Path) -> None:
    """Run from an empty directory, so its SQLite file is new; then again, as the README says
    a second run works and writes nothing."""
    script = tmp_path / "quickstart.py"
    script.write_text(python_api_snippet())
    revisions = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "{'checkout': '__DISABLE__'}",
            "{'checkout': '__DISABLE__'}",
            "__DISABLE__",
            """b'{"flags":{"checkout":"__DISABLE__"}}'""",
            "default",
            "{'checkout': '__DISABLE__'}",
        ]
        with Flaggery.from_db_url(f"sqlite:///{tmp_path / 'quickstart.db'}") as flaggery:
            assert flaggery.get_buckets().total_buckets == 100
            revisions.append(flaggery.revision())
    assert revisions[0] == revisions[1]  # the second run wrote nothing


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    match = re.search(r'^TEST_COMMAND="(.*)"$', ci, re.M)
    assert match, ".ci/run defines no TEST_COMMAND"
    command = match.group(1)
    bash_block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    assert any(line.startswith(command + " ") for line in bash_block.splitlines())
