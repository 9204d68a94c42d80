"""`make demo` prints the observer UI's address: the port it hands the observer worker is the one it says."""

from __future__ import annotations

import socket

from opengym_streams.demo.runner import ui_env
from opengym_streams.ui import DEFAULT_PORT


def test_the_address_the_demo_prints_is_the_port_the_observer_gets():
    url, env = ui_env()
    assert url == f"http://127.0.0.1:{env['OPENGYM_UI_PORT']}"


def test_a_taken_ui_port_moves_the_observer_to_a_free_one():
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("127.0.0.1", DEFAULT_PORT))
        except OSError:
            pass  # already taken by something else: the same situation
        holder.listen(1)
        url, env = ui_env()
        assert env["OPENGYM_UI_PORT"] != str(DEFAULT_PORT)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", int(env["OPENGYM_UI_PORT"])))  # free when chosen


def test_only_the_observer_worker_runs_a_web_server(monkeypatch):
    from opengym_streams.commands.worker import faust_argv

    monkeypatch.delenv("OPENGYM_UI_PORT", raising=False)
    assert "--with-web" in faust_argv("correlation") and "--without-web" not in faust_argv("correlation")
    assert "--without-web" in faust_argv("reservation")
    monkeypatch.setenv("OPENGYM_UI_PORT", "0")
    assert "--without-web" in faust_argv("correlation")
