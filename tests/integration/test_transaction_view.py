"""The transaction view in a real browser: headless Chromium (Debian's chromium + chromium-driver, driven
by Selenium) against a live observer worker on its own topics, after a run with injected faults fed as
facts and time driven by ticks (as in test_observer_detection.py).

The worker is ``agents.correlation`` with one bug switched on (tests/integration/observer_with_a_bug.py):
it dead-letters the NotificationSent of one booking until the test "deploys the fix" by deleting a
file; a redrive from the UI must then bring that fact through.

Screenshots of each page are written to test-artifacts/ui/ (not committed); with
OPENGYM_UI_DOCS_SCREENSHOTS=1 also to docs/images/ (the ones docs/observer.md shows).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from opengym import topics
from opengym.agents.system import SYSTEM
from opengym_streams.observe import observed_topics
from opengym.demo import scenarios
from opengym_streams.event import now_ms
from opengym_streams.kafka import create_topics, delete_topics_with_prefix
from opengym_streams.settings import REPO_ROOT
from opengym_streams.ui import free_port
from tests.conftest import wait_for
from tests.integration.test_observer_detection import WORKER_ENV, Feeder, caught_up
from opengym.topics import topic_name

FAULTS = {scenarios.NESTED_TIMEOUT: 2, scenarios.LATE_REPLY: 1, scenarios.NOTIFICATION_NEVER_STARTED: 1,
          scenarios.ATTENDANCE_NEVER_COMPLETED: 1, scenarios.SETTLEMENT_STALLED: 1, scenarios.ORPHAN_REPLY: 1}
BOOKINGS = 16
EXPECTED_KINDS = {"NESTED_TIMEOUT", "LATE_REPLY", "DOWNSTREAM_NOT_STARTED", "DOWNSTREAM_NOT_COMPLETED",
                  "CHAIN_STALLED", "REPLY_WITHOUT_REQUEST"}
ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic")
"""The machine's network is closed: without these, Chromium hangs on connections it tries to make."""


def with_member(events, member_id: str):
    return [e.model_copy(update={"member_id": member_id}) if hasattr(e, "member_id") else e for e in events]


@pytest.fixture(scope="module")
def faulted_observer(stack, tmp_path_factory):
    """A live observer with its web UI, after a faulted run: (base URL, what was injected)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    home = tmp_path_factory.mktemp("ui-home")
    bug = home / "bug-not-fixed-yet"
    bug.write_text("redrive-ui\nstubborn\n")  # the bookings whose NotificationSent the bug dead-letters
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENGYM_TOPIC_PREFIX", prefix)
        mp.setenv("OPENGYM_HOME", str(home))
        create_topics()
        env = {**os.environ, **WORKER_ENV, "OPENGYM_UI_PORT": str(port), "OPENGYM_TEST_BUG_FILE": str(bug)}
        log_path = home / "worker.log"
        log = open(log_path, "ab")
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "faust"), "-A", "tests.integration.observer_with_a_bug", "worker",
             "-l", "info"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT, start_new_session=True)

        def tail() -> str:
            return "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])

        try:
            wait_for(lambda: "[^Worker]: Ready" in log_path.read_text(errors="replace") or worker.poll() is not None,
                     90, "the observer worker to be ready", seen=tail)
            assert worker.poll() is None, tail()
            feeder = Feeder()
            t0 = now_ms() + 24 * 3_600_000
            chosen = scenarios.mix(BOOKINGS, FAULTS, seed=5)
            workload, by_scenario = [], {}
            for i, scenario in enumerate(chosen):
                booking_id = f"{prefix}{i:03d}-{scenario}"
                by_scenario.setdefault(scenario, []).append(booking_id)
                workload += scenarios.booking(booking_id, t0 + i * 10, scenario)
            member = f"m-{prefix}regular"
            regulars = [f"{prefix}regular-{n}" for n in (1, 2)]
            for n, booking_id in enumerate(regulars):
                workload += with_member(scenarios.booking(booking_id, t0 + 500 + n * 10, scenarios.CLEAN), member)
            redriven, stubborn = f"{prefix}redrive-ui-1", f"{prefix}stubborn-1"
            workload += scenarios.booking(redriven, t0 + 700, scenarios.CLEAN)
            workload += scenarios.booking(stubborn, t0 + 710, scenarios.CLEAN)
            feeder.facts(workload)
            inputs = [topic_name(t) for t in observed_topics(SYSTEM, SYSTEM.processes())]
            group = f"{prefix}opengym-correlation"
            wait_for(lambda: caught_up(group, inputs), 60, "the observer to consume the facts", seen=tail)
            for now in range(t0 + 5000, t0 + 130_000, 5000):
                feeder.tick(now)
            wait_for(lambda: caught_up(group, [topic_name(topics.CORRELATION_CLOCK)]), 60,
                     "the observer to handle the ticks", seen=tail)
            bug.write_text("stubborn\n")  # the fix for redrive-ui's bug is deployed; its dead letter waits
            yield {"url": f"http://127.0.0.1:{port}", "by_scenario": by_scenario, "member": member,
                   "regulars": regulars, "redriven": redriven, "stubborn": stubborn, "bug": bug, "prefix": prefix,
                   "log": tail, "env": {**os.environ, "OPENGYM_TOPIC_PREFIX": prefix}}
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
            log.close()
            delete_topics_with_prefix(prefix)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "Debian's chromium and chromium-driver are not installed (.ci/debian-packages)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="opengym-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never look for a browser of its own
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_page_load_timeout(30)
    yield session
    session.quit()
    shutil.rmtree(profile, ignore_errors=True)


def shot(browser, name: str, docs_height: int | None = None) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    if os.environ.get("OPENGYM_UI_DOCS_SCREENSHOTS") == "1":
        size = browser.get_window_size()
        height = docs_height or browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1400, min(max(height + 40, 700), 2400))
        browser.save_screenshot(str(REPO_ROOT / "docs" / "images" / f"ui-{name}.png"))
        browser.set_window_size(size["width"], size["height"])


def text(browser, css: str) -> str:
    """The element's text read in one step (the page refreshes itself in place; a handle can go stale)."""
    return browser.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css)


def page_text(browser, url: str, css: str = "main") -> str:
    browser.get(url)
    return text(browser, css)


def test_the_overview_lists_every_injected_anomaly_kind(faulted_observer, browser):
    from selenium.webdriver.common.by import By

    url = faulted_observer["url"]

    def published() -> set[str]:
        with urllib.request.urlopen(f"{url}/api/overview", timeout=10) as response:
            return {k for k, n in json.load(response)["anomalies_last_hour"].items() if n > 0}

    wait_for(lambda: published() >= EXPECTED_KINDS, 30, "the UI to read every anomaly published", seen=published)
    browser.get(url + "/")
    # Read the table in one go: the page refreshes itself in place and a row read later could be gone.
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#anomalies tr')).slice(1)"
        ".map(r => Array.from(r.cells).slice(0, 2).map(c => c.innerText.trim()))")
    found = {kind: int(count) for kind, count in rows}
    assert {k for k, n in found.items() if n > 0} == EXPECTED_KINDS
    assert found["NESTED_TIMEOUT"] == 3  # two timeouts, and the late reply is a timeout too
    wait_for(lambda: browser.execute_script("return document.body.dataset.diagrams") == "rendered", 20,
             "mermaid to render the catalog diagrams")
    assert len(browser.find_elements(By.CSS_SELECTOR, "pre.mermaid svg")) == 2
    shot(browser, "overview")


def test_a_timed_out_booking_shows_its_overdue_nested_pair(faulted_observer, browser):
    from selenium.webdriver.common.by import By

    booking = faulted_observer["by_scenario"][scenarios.NESTED_TIMEOUT][0]
    browser.get(f"{faulted_observer['url']}/transactions/{booking}")
    nested_css = 'li.process.nested[data-process="InstrumentConsumeProcess"]'
    nested = text(browser, nested_css)
    assert "(owner entitlement)" in nested and "anomalous" in nested
    overdue = text(browser, f"{nested_css} li.expectation.overdue")
    assert "InstrumentConsumed | InstrumentConsumeDenied from entitlement within 5000 ms" in overdue
    assert "NESTED_TIMEOUT" in overdue and "OpenGymNestedTimeouts → entitlement" in overdue
    facts_table = text(browser, "#facts")
    assert "BookClassRequested" in facts_table and f"{faulted_observer['prefix']}opengym.reservation.commands" in facts_table
    assert "NESTED_TIMEOUT\tInstrumentConsumeProcess\tentitlement" in text(browser, "#anomalies")
    link = browser.find_element(By.CSS_SELECTOR, "#anomalies a.runbook-link").get_attribute("href")
    assert link.endswith("/runbook#opengymnestedtimeouts")
    shot(browser, "transaction")
    browser.get(link)
    assert browser.find_element(By.ID, "opengymnestedtimeouts").text == "OpenGymNestedTimeouts"


def test_a_search_by_member_id_finds_its_bookings(faulted_observer, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{faulted_observer['url']}/transactions")
    box = browser.find_element(By.ID, "q")
    box.send_keys(faulted_observer["member"])
    box.submit()
    wait_for(lambda: "q=" in browser.current_url, 10, "the search to be submitted")
    found = set(browser.execute_script(
        "return Array.from(document.querySelectorAll('tr.row a.cid')).map(a => a.innerText)"))
    assert found == set(faulted_observer["regulars"])
    assert text(browser, "#shown").startswith("2 matching transactions")
    browser.get(f"{faulted_observer['url']}/transactions?status=anomalous")
    shot(browser, "transactions")


def test_a_redrive_from_the_ui_brings_a_fixed_dead_letter_through(faulted_observer, browser):
    """The redrive is pressed on the dead-letters page; the transaction's page, open in another tab and
    never reloaded, shows the fact arriving (the pages refresh themselves)."""
    from selenium.webdriver.common.by import By

    base, booking = faulted_observer["url"], faulted_observer["redriven"]

    def pending() -> list[list[str]]:
        browser.get(f"{base}/dead-letters")
        return browser.execute_script(
            "return Array.from(document.querySelectorAll('tr.letter.pending'))"
            ".filter(r => r.innerText.includes(arguments[0])).map(r => [r.dataset.id, r.innerText])", booking)

    rows = wait_for(pending, 30, "the observer's dead letter to be listed")
    assert len(rows) == 1, rows
    letter_id, row = rows[0]
    assert "HANDLER_ERROR" in row and "notifications.events" in row and "NotificationSent" in row
    shot(browser, "dead-letters")
    transaction_tab = browser.current_window_handle
    browser.get(f"{base}/transactions/{booking}")
    assert "NotificationSent" not in text(browser, "#facts")
    browser.switch_to.new_window("tab")
    browser.get(f"{base}/dead-letters")
    browser.find_element(By.CSS_SELECTOR, f'tr.letter[data-id="{letter_id}"] input[type=checkbox]').click()
    browser.find_element(By.ID, "redrive-button").click()
    flash = wait_for(lambda: text(browser, "#flash"), 20, "the redrive's result")
    assert flash.startswith("redriven 1, already redriven before 0, skipped 0"), flash
    assert "redriven" in text(browser, f'tr.letter.redriven[data-id="{letter_id}"] td.state')
    browser.close()
    browser.switch_to.window(transaction_tab)
    wait_for(lambda: "NotificationSent" in text(browser, "#facts"), 30,
             "the transaction's page to show the redriven NotificationSent by itself", seen=faulted_observer["log"])
    assert text(browser, "#live-status").startswith("live · updated")
    # Redriving the same letter again changes nothing.
    request = urllib.request.Request(f"{base}/api/dead-letters/redrive", data=json.dumps({"ids": [letter_id]}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        again = json.load(response)
    assert again["sent"] == [] and again["already"] == [letter_id]


def test_trace_and_transactions_ask_the_running_observer(faulted_observer):
    env = {**os.environ, "OPENGYM_TOPIC_PREFIX": faulted_observer["prefix"], "OPENGYM_UI_URL": faulted_observer["url"]}
    booking = faulted_observer["by_scenario"][scenarios.SETTLEMENT_STALLED][0]
    trace = subprocess.run([sys.executable, "-m", "opengym_streams.cli", "trace", booking], capture_output=True, text=True,
                           timeout=60, cwd=REPO_ROOT, env=env)
    assert trace.returncode == 0, trace.stderr
    assert "from the observer at" in trace.stderr
    assert "CHOREOGRAPHY PartnerVisitSettlement (no owner): anomalous" in trace.stdout
    listed = subprocess.run([sys.executable, "-m", "opengym_streams.cli", "transactions", "--kind", "CHAIN_STALLED", "--json"],
                            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=env)
    assert listed.returncode == 0, listed.stderr
    assert [r["correlation_id"] for r in json.loads(listed.stdout)["rows"]] == [booking]


def opengym(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opengym_streams.cli", *args], capture_output=True, text=True, timeout=90,
                          cwd=REPO_ROOT, env=env)


def test_a_redriven_letter_that_fails_again_returns_with_its_history_and_goes_through_once_fixed(faulted_observer):
    env, booking = faulted_observer["env"], faulted_observer["stubborn"]

    def letters() -> list[dict]:
        with urllib.request.urlopen(f"{faulted_observer['url']}/api/dead-letters?correlation_id={booking}",
                                    timeout=10) as response:
            return json.load(response)["dead_letters"]

    wait_for(letters, 30, "the stubborn booking's dead letter")
    listed = opengym(env, "dlq", "list", "--correlation-id", booking, "--json")
    assert listed.returncode == 0, listed.stderr
    first = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    assert [(d["component"], d["error_kind"], d["redriven"]) for d in first] == [("correlation", "HANDLER_ERROR", None)]
    # Redriven while the bug is still there: it fails again and comes back, linked to the first letter.
    sent = opengym(env, "dlq", "redrive", "--correlation-id", booking)
    assert sent.returncode == 0 and "redriven 1, already redriven before 0" in sent.stdout, sent.stdout + sent.stderr
    back = wait_for(lambda: [d for d in letters() if d["redriven"] is None and d["id"] != first[0]["id"]], 30,
                    "the redriven message to fail again", seen=letters)
    assert back[0]["history"] == [first[0]["id"]]
    shown = opengym(env, "dlq", "show", back[0]["id"])
    assert shown.returncode == 0 and json.loads(shown.stdout)["history"] == [first[0]["id"]], shown.stdout + shown.stderr
    assert back[0]["source"]["offset"] == next(d for d in letters() if d["id"] == first[0]["id"])["redriven"]["to"]["offset"]
    # The fix is deployed; redriving the same selection sends only the letter not redriven yet, once.
    faulted_observer["bug"].write_text("")
    again = opengym(env, "dlq", "redrive", "--correlation-id", booking)
    assert "redriven 1, already redriven before 1" in again.stdout, again.stdout + again.stderr
    once_more = opengym(env, "dlq", "redrive", "--correlation-id", booking)
    assert "redriven 0, already redriven before 2" in once_more.stdout, once_more.stdout

    def facts_seen() -> list[str]:
        with urllib.request.urlopen(f"{faulted_observer['url']}/api/transactions/{booking}", timeout=10) as response:
            return [f["type"] for f in json.load(response)["facts"]]

    wait_for(lambda: "NotificationSent" in facts_seen(), 30, "the fixed NotificationSent to reach the observer",
             seen=facts_seen)
    assert facts_seen().count("NotificationSent") == 1


def test_a_topic_scan_that_cannot_finish_in_time_fails_instead_of_printing_a_part(faulted_observer):
    booking = faulted_observer["by_scenario"][scenarios.NESTED_TIMEOUT][0]
    scan = opengym(faulted_observer["env"], "trace", booking, "--from-topics", "--timeout", "0")
    assert scan.returncode == 1 and scan.stdout == ""
    assert "messages on" in scan.stderr and "still unread" in scan.stderr, scan.stderr
