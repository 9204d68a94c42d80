"""The Node tools the tests run (tools/node: the real Mermaid and AsyncAPI parsers, installed by `make install`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from opengym_streams.settings import REPO_ROOT

NODE_DIR = REPO_ROOT / "tools" / "node"


def run_node(script: str, *args: str, stdin: Any = None, timeout: float = 120) -> Any:
    """Run ``tools/node/<script>`` and return the JSON it prints."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/install-debian-packages installs it)")
    if not (NODE_DIR / "node_modules").is_dir():
        pytest.fail(f"{NODE_DIR / 'node_modules'} is missing: run `make install`")
    result = subprocess.run([node, str(NODE_DIR / script), *args], cwd=NODE_DIR, capture_output=True, text=True,
                            input=None if stdin is None else json.dumps(stdin), timeout=timeout)
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{result.stderr}"
    return json.loads(result.stdout)
