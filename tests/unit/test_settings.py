"""Every OPENGYM_* knob is declared once and read by one from_env."""

from __future__ import annotations


def test_every_kind_of_knob_is_read_from_the_environment(monkeypatch):
    from opengym_streams.settings import Settings

    monkeypatch.setenv("OPENGYM_METRICS_PORT", "0")
    monkeypatch.setenv("OPENGYM_DRAIN_NODE", "0")
    monkeypatch.setenv("OPENGYM_TICK_INTERVAL", "0.25")
    monkeypatch.setenv("OPENGYM_HOME", "/somewhere")
    settings = Settings.from_env()
    assert (settings.metrics_port, settings.drain_node, settings.tick_interval, str(settings.home)) == \
        (0, False, 0.25, "/somewhere")
    monkeypatch.setenv("OPENGYM_METRICS_PORT", "")
    assert Settings.from_env().metrics_port is None, "empty means the default"


def test_docs_settings_md_lists_every_knob():
    from opengym_streams.commands.settings import DOCS_PATH, render

    assert DOCS_PATH.read_text() == render(), "docs/settings.md is stale: run `opengym settings docs`"


def test_every_opengym_variable_the_code_reads_is_a_declared_knob():
    import re
    from pathlib import Path

    from opengym_streams.commands.settings import all_knobs

    root = Path(__file__).resolve().parents[2]
    declared = set(all_knobs())
    named = set()
    for folder in ("streams", "agents", "topics", "monitoring"):
        for path in (root / folder).rglob("*.py"):
            named |= set(re.findall(r"OPENGYM_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    patterns = {"OPENGYM_PROCESS"}  # OPENGYM_<PROCESS>_<WHAT>_MS, spelled out in docs
    undeclared = sorted(n for n in named - declared if not any(n.startswith(p) for p in patterns))
    assert undeclared == [], f"read from the environment but not declared as knobs: {undeclared}"
