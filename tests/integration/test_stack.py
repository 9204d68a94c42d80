"""`opengym stack`: against the real running stack, and its clear refusals."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from opengym_streams.stack import Layout
from opengym_streams.settings import get_settings

OPENGYM = [sys.executable, "-m", "opengym_streams.cli"]


def run(args, env=None, timeout=120):
    return subprocess.run(OPENGYM + args, capture_output=True, text=True, env=env, timeout=timeout)


def env_with(**changes):
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def path_without(*tools):
    """PATH with every directory that holds one of ``tools`` left out (the venv's python stays reachable)."""
    keep = []
    for directory in os.environ["PATH"].split(os.pathsep):
        if not any((Path(directory) / tool).exists() for tool in tools):
            keep.append(directory)
    return os.pathsep.join(keep)


def test_up_is_a_no_op_when_the_stack_already_runs(stack):
    result = run(["stack", "up"])
    assert result.returncode == 0, result.stderr
    assert "kafka: already running" in result.stdout
    assert "registry: already running" in result.stdout


def test_status_says_what_runs_where_and_where_the_logs_are(stack):
    result = run(["stack", "status"])
    assert result.returncode == 0
    assert "kafka: running" in result.stdout and "127.0.0.1:9092" in result.stdout
    assert "registry: running" in result.stdout and "/apis/ccompat/v7" in result.stdout
    assert "kafka.log" in result.stdout and "registry.log" in result.stdout


def test_a_port_taken_by_another_process_is_one_clear_line(stack, tmp_path):
    # A second OPENGYM_HOME has no pid files, so the running broker is "something else" to it.
    home = tmp_path / "home"
    home.mkdir()
    (home / "dist").symlink_to(Layout(get_settings().home).dist)
    result = run(["stack", "up"], env=env_with(OPENGYM_HOME=str(home)))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "port 9092" in lines[0] and "taken by another process" in lines[0]


def test_missing_java_is_one_clear_line(tmp_path):
    env = env_with(OPENGYM_HOME=str(tmp_path), JAVA_HOME=None, PATH=path_without("java"))
    result = run(["stack", "up"], env=env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "java is not installed" in result.stderr


def test_missing_maven_with_nothing_cached_is_one_clear_line(tmp_path):
    java = shutil.which("java")
    assert java, "the machine has Java"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(os.path.realpath(java))
    env = env_with(OPENGYM_HOME=str(tmp_path / "home"), JAVA_HOME=None,
                   PATH=os.pathsep.join([str(bin_dir), path_without("java", "mvn")]))
    result = run(["stack", "up"], env=env)
    assert result.returncode == 1
    assert "mvn is not installed" in result.stderr
    assert not (tmp_path / "home" / "state" / "kafka.pid").exists()
