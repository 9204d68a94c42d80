"""Every OPENGYM_* knob is declared once and read by one from_env."""

from __future__ import annotations


def test_every_kind_of_knob_is_read_from_the_environment(monkeypatch):
    from streams.settings import Settings

    monkeypatch.setenv("OPENGYM_METRICS_PORT", "0")
    monkeypatch.setenv("OPENGYM_DRAIN_NODE", "0")
    monkeypatch.setenv("OPENGYM_TICK_INTERVAL", "0.25")
    monkeypatch.setenv("OPENGYM_HOME", "/somewhere")
    settings = Settings.from_env()
    assert (settings.metrics_port, settings.drain_node, settings.tick_interval, str(settings.home)) == \
        (0, False, 0.25, "/somewhere")
    monkeypatch.setenv("OPENGYM_METRICS_PORT", "")
    assert Settings.from_env().metrics_port is None, "empty means the default"
