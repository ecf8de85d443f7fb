"""The one part of the build pyproject.toml cannot declare without a warning: the optional C
accelerator of the targeting-key hash (flaggery/engine/_keyhash.c).

setuptools still calls ``[tool.setuptools] ext-modules`` experimental and warns on every build
(tests/test_packaging.py keeps the build log free of warnings), so the extension is declared
here and everything else stays in pyproject.toml. ``optional=True``: without a C compiler or
Python's headers the build says the extension failed and installs without it, and
flaggery.engine.targeting falls back to its pure-Python reference (same buckets, slower).
tests/engine/test_targeting_accelerator.py fails under ``CI`` when the extension is missing.
An editable install (``pip install -e .``) compiles it in place, beside the .c: run it again
after editing flaggery/engine/_keyhash.c (the equality tests catch a stale build).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("flaggery.engine._keyhash", ["flaggery/engine/_keyhash.c"], optional=True)
    ]
)
