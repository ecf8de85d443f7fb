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
SKIP_NAMES = (
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
)
SKIP = shutil.ignore_patterns(*SKIP_NAMES)


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


def test_the_sdist_holds_the_accelerators_source_and_the_wheel_its_types(
    built: tuple[str, Path],
) -> None:
    """The C accelerator (flaggery/engine/_keyhash.c, declared in setup.py) builds from the
    sdist, and an installed flaggery type-checks against it (its .pyi). Where this machine
    built it in place (the editable install), the wheel carries it compiled too."""
    _, out = built
    (sdist,) = out.glob("flaggery-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
    assert {"setup.py", "flaggery/engine/_keyhash.c", "flaggery/engine/_keyhash.pyi"} <= names
    (wheel,) = out.glob("flaggery-*.whl")
    wheel_names = set(zipfile.ZipFile(wheel).namelist())
    assert "flaggery/engine/_keyhash.pyi" in wheel_names
    compiled = [name for name in wheel_names if name.startswith("flaggery/engine/_keyhash.")]
    if list((ROOT / "flaggery" / "engine").glob("_keyhash.*.so")):
        assert any(name.endswith(".so") for name in compiled), compiled


def test_without_a_c_compiler_the_wheel_builds_and_serves_every_key_in_python(
    tmp_path: Path,
) -> None:
    """A machine without gcc (CC names a compiler that fails): the optional extension is
    skipped, the wheel still builds, and flaggery installed from it buckets keys with the
    pure-Python reference, into the same buckets."""
    source = tmp_path / "flaggery"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns("*.so", *SKIP_NAMES))
    env = {**os.environ, "CC": "false"}
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", "dist", "."],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
        cwd=source,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    (wheel,) = (source / "dist").glob("flaggery-*.whl")
    assert not [name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".so")]
    installed = tmp_path / "installed"
    zipfile.ZipFile(wheel).extractall(installed)
    probe = (
        "import flaggery.engine.targeting as t\n"
        "print(t.__file__, t.ACCELERATED, t.key_bucketer(bytes(16), 100, [(10, 3)]).index('ü@x'))"
    )
    env = {**os.environ, "PYTHONPATH": str(installed)}
    probed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert probed.returncode == 0, probed.stderr
    path, accelerated, index = probed.stdout.split()
    assert Path(path).is_relative_to(installed) and accelerated == "False"
    from flaggery.engine.targeting import key_bucketer

    assert int(index) == key_bucketer(bytes(16), 100, [(10, 3)]).index("ü@x")
