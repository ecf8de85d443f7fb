"""The README's and docs/' commands, links and code, checked against what they claim.

Every relative link and anchor in README.md, CHANGELOG.md and docs/*.md must resolve (anchors
as GitHub makes them from headings). Every Python block must compile (fragments may use
top-level ``await``); the blocks that are complete scripts (no name left undefined) are run:
each one is listed in ``SCRIPTS`` and run by its own test, so a new one fails here until
someone decides how to run it. Files and Python names the pages mention must exist, and every
benchmark command shown must accept the options it is shown with.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flaggery.core import Flaggery
from tests.http.processes import flaggery_process

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
SOURCE_PATH = re.compile(r"(?<![\w/.])((?:flaggery|bench|tests|docs)/[\w/.*-]*\w)")
DOTTED_NAME = re.compile(r"`(flaggery(?:\.\w+)+)(?![\w(])")  # a call is on an instance
README_PORT = "127.0.0.1:8000"

# The complete scripts, each as (page, a line it contains); each is run by a test below.
QUICKSTART = ("docs/python-api.md", 'DB_URL = "sqlite:///quickstart.db"')
TOUR = ("README.md", 'Evaluator.from_db_url("sqlite:///flaggery.db")')
OFREP_EXAMPLE = ("docs/openfeature.md", "OFREPProvider(")
OFFLINE_KEY_HASH = ("docs/allocation.md", "def bucket_of_key(")
WEBHOOK_SIGNATURE = ("docs/delivery.md", "def verify(secret: str, header: str")
SCRIPTS = (QUICKSTART, TOUR, OFREP_EXAMPLE, OFFLINE_KEY_HASH, WEBHOOK_SIGNATURE)


def blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text()) if lang == language]


def block_with(page: str, line: str) -> str:
    found = [body for body in blocks(ROOT / page, "python") if line in body]
    assert len(found) == 1, f"{page}: {len(found)} Python blocks contain {line!r}"
    return found[0]


def slugs(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces to
    hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    result = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def undefined_names(code: str) -> set[str]:
    tree = ast.parse(code)
    bound = set(dir(builtins))
    loaded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return loaded - bound


def is_complete_script(code: str) -> bool:
    try:
        compile(code, "<block>", "exec")
    except SyntaxError:  # top-level await: a fragment of an async function
        return False
    return not undefined_names(code)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path) if path else page
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved.relative_to(ROOT)}")
        elif anchor and anchor not in slugs(resolved.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert not broken, f"{page.name}: {broken}"


def resolves(dotted: str) -> bool:
    """Whether ``flaggery.a.b.C`` names something: the longest importable module, then
    attributes."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_source_file_and_python_name_named_exists(page: Path) -> None:
    """Paths such as `flaggery/store/group_commit.py` or `tests/store/test_allocation*.py`,
    and names such as `flaggery.engine.Explanation`: a rename must reach the docs."""
    text = page.read_text()
    missing = [path for path in SOURCE_PATH.findall(text) if not list(ROOT.glob(path))]
    missing += [name for name in DOTTED_NAME.findall(text) if not resolves(name)]
    assert not missing, f"{page.name} names what does not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_python_block_compiles_and_every_script_is_run(page: Path) -> None:
    name = str(page.relative_to(ROOT))
    for code in blocks(page, "python"):
        compile(code, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if is_complete_script(code):
            assert any(p == name and line in code for p, line in SCRIPTS), (
                f"{name} has a complete script no test runs; add it to SCRIPTS:\n{code}"
            )


def bench_commands() -> dict[str, set[str]]:
    """Each benchmark script the README and docs/ run with options -> those options."""
    commands: dict[str, set[str]] = {}
    for page in PAGES:
        for script, arguments in re.findall(r"`python (bench/\w+\.py)([^`]*)`", page.read_text()):
            commands.setdefault(script, set()).update(re.findall(r"--[\w-]+", arguments))
    return {script: options for script, options in commands.items() if options}


@pytest.mark.parametrize("script", sorted(bench_commands()))
def test_every_benchmark_command_shown_takes_its_options(script: str) -> None:
    """So that each documented number's command still runs as written."""
    result = subprocess.run(
        [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    missing = {option for option in bench_commands()[script] if option not in result.stdout}
    assert not missing, f"{script} --help has no {sorted(missing)}"


def test_the_readme_stays_a_front_door() -> None:
    """At most 250 lines, and a link to every page in docs/ (a page no link reaches is lost)."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    linked = {target.partition("#")[0] for target in LINK.findall(readme)}
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"not linked from the README: {sorted(pages - linked)}"


def run_script(code: str, cwd: Path, name: str = "script.py") -> list[str]:
    script = cwd / name
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_quickstart_runs(tmp_path: Path, db_url: str) -> None:
    """As written (a new SQLite file in an empty directory), and on PostgreSQL with only the URL
    changed; twice each, as the page says a second run works and writes nothing."""
    code = block_with(*QUICKSTART)
    if db_url.startswith("postgresql"):
        code = code.replace('"sqlite:///quickstart.db"', repr(db_url))
    else:
        db_url = f"sqlite:///{tmp_path / 'quickstart.db'}"
    revisions = []
    for _ in range(2):
        assert run_script(code, tmp_path) == [
            "{'checkout': '__DISABLE__'}",
            "{'checkout': '__DISABLE__'}",
            "__DISABLE__",
            """b'{"flags":{"checkout":"__DISABLE__"}}'""",
            "default",
            "{'checkout': '__DISABLE__'}",
        ]
        with Flaggery.from_db_url(db_url) as flaggery:
            assert flaggery.get_buckets().total_buckets == 100
            revisions.append(flaggery.revision())
    assert revisions[0] == revisions[1]  # the second run wrote nothing


def shell_commands(bash: str) -> list[tuple[str, str]]:
    """(command, the comment after it) for each line of a bash block, continuations joined."""
    commands = []
    for line in re.sub(r"\\\n\s*", " ", bash).splitlines():
        command, _, comment = line.partition("  # ")
        commands.append((command.strip(), comment.strip()))
    return commands


def promised(comment: str) -> list[str]:
    """The parts of a comment that the output must contain: '...' separates them."""
    return [part for part in comment.split("...") if part]


def test_the_readme_tour(tmp_path: Path) -> None:
    """The tour's curl commands against the first command's server (admin, SQLite in the
    current directory), each answer holding what its comment shows; then its Python script,
    from the same directory, printing what its comments show."""
    readme = ROOT / "README.md"
    tour = next(bash for bash in blocks(readme, "bash") if "curl" in bash)
    with flaggery_process(["--admin"], cwd=tmp_path) as server:
        for command, comment in shell_commands(tour):
            assert command.startswith("curl "), command
            command = command.replace(README_PORT, f"127.0.0.1:{server.port}")
            result = subprocess.run(
                ["bash", "-c", f"curl --silent --show-error --fail {command[len('curl ') :]}"],
                capture_output=True,
                text=True,
                timeout=30,
                cwd=tmp_path,
            )
            assert result.returncode == 0, f"{command}: {result.stderr}"
            for part in promised(comment):
                assert part in result.stdout, f"{command}: {part!r} not in {result.stdout}"
        code = block_with(*TOUR)
        printed = [
            line.partition("  # ")[2]
            for line in code.splitlines()
            if line.strip().startswith("print(")
        ]
        assert run_script(code, tmp_path, "tour.py") == printed


def test_the_ofrep_provider_example(tmp_path: Path, db_url: str) -> None:
    """The remote OpenFeature example, pointed at a real server instead of http://flags:8000:
    the SDK's OFREP provider evaluates a flag the server has."""
    code = block_with(*OFREP_EXAMPLE)
    env = {"FLAGGERY_DB_URL": db_url}
    with flaggery_process(["--admin"], cwd=tmp_path, env=env) as server:
        client = server.client
        client.put("/v1/buckets", params={"amount": 1}).raise_for_status()
        client.post("/v1/subjects/42", params={"weight": 1}).raise_for_status()
        client.post("/v1/features/checkout").raise_for_status()
        variant = "/v1/features/checkout/variants/on"
        client.post(variant, params={"make_default": True}).raise_for_status()
        client.put(f"{variant}/value", json={"value": True}).raise_for_status()
        code = code.replace("http://flags:8000", str(client.base_url).rstrip("/"))
        last = code.rstrip().splitlines()[-1]
        code += f"print({last.strip()})\n"
        assert run_script(code, tmp_path)[-1] == "True"


def test_the_offline_key_hash_is_the_servers() -> None:
    """The function docs/allocation.md gives users, run as written, buckets every key as the
    engine does, for any salt and bucket list."""
    from flaggery.engine.targeting import bucket_of_key, key_hasher

    namespace: dict[str, object] = {}
    exec(block_with(*OFFLINE_KEY_HASH), namespace)
    documented = namespace["bucket_of_key"]
    assert callable(documented)
    salt, buckets = bytes(range(16)), [3, 4, 7, *range(10, 207)]
    keys = ["0", "042", "ana@example.com", "a/b c\n€", *(f"visitor-{n}" for n in range(500))]
    for count in (1, 2, 100, 200):
        for key in keys:
            assert (
                documented(salt, buckets[:count], key)
                == bucket_of_key(key_hasher(salt), buckets[:count], key)[1]
            )
    for splits, count in (([(1, 2)], 2), ([(3, 3), (9, 2)], 20), ([(40, 2), (100, 2)], 200)):
        for key in keys:
            assert (
                documented(salt, buckets[:count], key, splits)
                == bucket_of_key(key_hasher(salt), buckets[:count], key, splits)[1]
            )


def test_the_documented_webhook_check_accepts_the_servers_signatures() -> None:
    """The receiver's check docs/delivery.md gives, run as written, accepts what the deliverer
    signs, and refuses another body, another secret and an old timestamp (a replay)."""
    import time

    from flaggery.hooks.signing import sign

    namespace: dict[str, object] = {}
    exec(block_with(*WEBHOOK_SIGNATURE), namespace)
    verify = namespace["verify"]
    assert callable(verify)
    secret, body, now = "s3cret-s3cret-s3cret", b'{"revision": 42}', int(time.time())
    assert verify(secret, sign(secret, now, body), body)
    assert not verify(secret, sign(secret, now, body), body + b" ")
    assert not verify("another-secret-xx", sign(secret, now, body), body)
    assert not verify(secret, sign(secret, now - 600, body), body)
    assert not verify(secret, "t=x,v1=00", body)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    match = re.search(r'^TEST_COMMAND="(.*)"$', ci, re.M)
    assert match, ".ci/run defines no TEST_COMMAND"
    command = match.group(1)
    bash_block = blocks(ROOT / "README.md", "bash")[0]
    assert any(line.startswith(command + " ") for line in bash_block.splitlines())
