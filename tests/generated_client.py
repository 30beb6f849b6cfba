"""A Python client generated from the API's schema with openapi-python-client, the way an
outside team would make one (docs/api.md, "A generated client"), imported for a test to use.

The generator formats its output with ruff (its post hooks find `ruff` on PATH): ruff is a
dependency of the generator, installed in this environment by the `test` group, so generating
needs nothing from the network.
"""

import importlib
import os
import pkgutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

# The generator names the package after the schema's title, "shop + jobs API".
PACKAGE = "shop_jobs_api_client"


@contextmanager
def generated_client(schema: bytes, directory: Path) -> Iterator[Callable[[str], ModuleType]]:
    """Generate the client from `schema` (the bytes of /api/openapi.json) under `directory`,
    import every one of its modules, and give a function that returns one by its name in the
    package (`"api.signup.signup"`). The package is forgotten again afterwards."""
    schema_file = directory / "openapi.json"
    schema_file.write_bytes(schema)
    project = directory / "client"
    venv_bin = str(Path(sys.executable).parent)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(schema_file),
            "--output-path",
            str(project),
            # A warning is a failure: "ruff is not in PATH" is one (the code would go
            # unformatted), and so is any part of the schema the generator had to skip.
            "--fail-on-warning",
        ],
        env={**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    sys.path.insert(0, str(project))
    try:
        package = importlib.import_module(PACKAGE)
        # Every module, as a client's user may import any of them: a module that does not
        # import (a name the generated code uses and never defines) fails here.
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{PACKAGE}."):
            importlib.import_module(module.name)
        yield lambda name: importlib.import_module(f"{PACKAGE}.{name}")
    finally:
        sys.path.remove(str(project))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]
