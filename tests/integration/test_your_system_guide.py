"""docs/your-system.md, followed to the letter: its files written and its commands run, in order, in a
scratch directory, on the real broker and registry, under a topic prefix of its own.

The page marks what it means to be run with HTML comments (invisible when rendered):
``<!-- file: PATH -->`` before a code block writes it; ``<!-- run -->`` before a bash block runs each line
(``export`` lines change the environment of what follows, a line ending in ``&`` starts in the background);
``<!-- run-until: TEXT -->`` reruns the block's command until its output says TEXT (with a deadline);
``<!-- stop: COMMAND -->`` stops the background process started as COMMAND.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from opengym_streams.settings import REPO_ROOT
from tests.integration.e2e_support import delete_prefixed_topics

GUIDE = REPO_ROOT / "docs" / "your-system.md"
DIRECTIVE = re.compile(r"<!-- (file|run|run-until|stop)(?::\s*(.*?))? -->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def steps(text: str) -> list[tuple[str, str | None, str | None]]:
    """(directive, its argument, the code block after it; None for ``stop``), in the page's order."""
    found = []
    for match in DIRECTIVE.finditer(text):
        kind, argument = match.group(1), match.group(2)
        if kind == "stop":
            found.append((kind, argument, None))
            continue
        block = FENCE.search(text, match.end())
        assert block is not None and text[match.end():block.start()].strip() == "", \
            f"{GUIDE.name}: <!-- {kind} --> at offset {match.start()} is not followed by a code block"
        found.append((kind, argument, block.group(2)))
    return found


class Follower:
    """Runs the page's steps in ``root`` with ``env``, keeping what it starts in the background."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root = root
        self.env = env
        self.background: dict[str, subprocess.Popen] = {}
        self.logs = root / "logs"
        self.logs.mkdir()

    def run(self, line: str, check: bool = True) -> str:
        if line.startswith("export "):
            shown = subprocess.run(["bash", "-c", f"{line} && env -0"], cwd=self.root, env=self.env,
                                   capture_output=True, text=True, check=True).stdout
            self.env = dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)
            return ""
        if line.endswith("&"):
            command = line[:-1].strip()
            log = open(self.logs / f"{len(self.background)}.log", "wb")
            self.background[command] = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=self.root,
                                                        env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                        start_new_session=True)
            return ""
        result = subprocess.run(["bash", "-c", line], cwd=self.root, env=self.env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0 or not check, f"`{line}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}" \
                                       f"\n{self.tails()}"
        return result.stdout

    def run_until(self, command: str, wanted: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            out = self.run(command, check=False)  # not there yet may well mean a non-zero exit (grep -c)
            if wanted in out:
                return out
            time.sleep(1)
        pytest.fail(f"`{command}` never said {wanted!r} in {timeout:.0f}s; last:\n{out}\n{self.tails()}")

    def stop(self, command: str) -> None:
        process = self.background.pop(command)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)

    def tails(self) -> str:
        return "\n".join(f"--- {path.name}:\n" + "\n".join(path.read_text(errors="replace").splitlines()[-8:])
                         for path in sorted([*self.logs.glob("*.log"), *self.root.glob("*.log")]))

    def close(self) -> None:
        for command in list(self.background):
            process = self.background[command]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            self.background.pop(command)


def test_the_page_marks_files_and_commands_for_this_test():
    kinds = [kind for kind, _, _ in steps(GUIDE.read_text())]
    assert kinds.count("file") >= 8 and kinds.count("run") >= 5 and "run-until" in kinds and "stop" in kinds


def test_following_docs_your_system_md_gives_a_running_observed_system(stack, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:10]}."
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OPENGYM_TOPIC_PREFIX": prefix, "OPENGYM_HOME": str(tmp_path / "home"), "OPENGYM_METRICS_PORT": "0",
           "OPENGYM_UI_PORT": "0", "OPENGYM_TICK_INTERVAL": "0.5"}
    env.pop("OPENGYM_SYSTEM", None)
    root = tmp_path / "work"
    root.mkdir()
    follower = Follower(root, env)
    try:
        for kind, argument, block in steps(GUIDE.read_text()):
            if kind == "file":
                path = root / argument
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(block)
            elif kind == "stop":
                follower.stop(argument)
            elif kind == "run-until":
                (command,) = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
                follower.run_until(command, argument)
            else:
                for line in block.splitlines():
                    if line.strip() and not line.lstrip().startswith("#"):
                        follower.run(line.strip())
        assert (root / "expenses" / "models.py").exists(), "opengym contracts generate wrote the models"
        assert "ORCHESTRATION ClaimApproval" in (root / "expenses" / "docs" / "catalog.md").read_text()
    finally:
        follower.close()
        delete_prefixed_topics(prefix)
