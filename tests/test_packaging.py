"""The sdist and wheel build without a warning and carry the license and the /docs assets.

Builds from a copy of the source tree (so build/ and *.egg-info never land in the work tree),
sdist first and the wheel from the sdist, as `python -m build` does: a file missing from the
sdist fails here too. About 3 s.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
STATIC = sorted(path.name for path in (ROOT / "flaggery/http/static").iterdir())
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The build log and the directory holding the sdist and the wheel."""
    source = tmp_path_factory.mktemp("source") / "flaggery"
    shutil.copytree(ROOT, source, ignore=SKIP)
    out = source / "dist"
    # Byte-compiling off makes setuptools warn that it skips it: not a packaging problem.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=150,  # under the per-test timeout (pyproject.toml)
        env=env,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    return log, out


def test_the_build_log_has_no_warning(built: tuple[str, Path]) -> None:
    log, _ = built
    warnings = [line for line in log.splitlines() if "warn" in line.lower()]
    assert not warnings, "\n".join(warnings)


def test_the_wheel_holds_the_license_static_files_and_migrations(built: tuple[str, Path]) -> None:
    _, out = built
    (wheel,) = out.glob("flaggery-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = f"flaggery-{version('flaggery')}.dist-info"
    assert f"{dist_info}/licenses/LICENSE" in names
    assert {f"flaggery/http/static/{name}" for name in STATIC} <= names
    assert "flaggery/migrations/versions/0001_initial_schema.py" in names
    modules = {f"{path.relative_to(ROOT)}" for path in (ROOT / "flaggery").rglob("*.py")}
    assert modules <= names, f"not in the wheel: {sorted(modules - names)}"
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: CDDL-1.1" in metadata


def test_the_sdist_holds_the_license(built: tuple[str, Path]) -> None:
    _, out = built
    (sdist,) = out.glob("flaggery-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
    assert {"LICENSE", "pyproject.toml", "README.md"} <= names
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith(
        "COMMON DEVELOPMENT AND DISTRIBUTION LICENSE (CDDL)\nVersion 1.1"
    )


def test_the_quickstart_runs_inside_the_checkout_after_a_plain_install(
    built: tuple[str, Path], tmp_path: Path
) -> None:
    """`pip install .` then the quickstart saved in the checkout: Python imports the checkout's
    flaggery/ (the script's directory comes first on sys.path), not the installed one, so the
    source tree must hold everything the package does, the Alembic history included. The
    wheel is unpacked into a new venv whose only other path is this environment's
    site-packages, read without its .pth files (so no editable install can help)."""
    _, out = built
    checkout = out.parent
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (wheel,) = out.glob("flaggery-*.whl")
    zipfile.ZipFile(wheel).extractall(purelib)
    Path(purelib, "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    docs = (ROOT / "docs" / "python-api.md").read_text()
    quickstart = docs.split("```python\n", 1)[1].split("```", 1)[0]
    script = checkout / "quickstart.py"
    script.write_text("import flaggery\nprint(flaggery.__file__)\n" + quickstart)
    result = subprocess.run(
        [python, str(script)], capture_output=True, text=True, timeout=120, cwd=checkout
    )
    assert result.returncode == 0, result.stderr
    imported, *printed = result.stdout.splitlines()
    assert imported == str(checkout / "flaggery" / "__init__.py")  # the checkout shadows
    assert printed[-1] == "{'checkout': '__DISABLE__'}"
