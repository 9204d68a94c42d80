"""The second system, order fulfilment, against everything the library checks a system for: its process
catalog passes the ownership test, its registry agrees with its topics, its contracts live in their own
namespace, its generated models and documents do not drift, the real AsyncAPI parser reads its document,
and the commands take it from OPENGYM_SYSTEM or the entry point. None of it needed the library to know it."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from opengym_streams import modelgen
from opengym_streams.asyncapi import render as render_asyncapi
from opengym_streams.catalog_check import check, check_subscriptions, load_subscriptions
from opengym_streams.catalog_docs import default_catalog, docs_path, render_system
from opengym_streams.commands.catalog import asyncapi_document
from opengym_streams.commands.settings import docs_path as settings_path
from opengym_streams.commands.settings import render as render_settings
from opengym_streams.contracts import load_contracts
from opengym_streams.observe import outputs
from opengym_streams.settings import REPO_ROOT
from opengym_streams.system import load
from order_fulfilment import topics
from order_fulfilment.agents.system import SYSTEM
from tests.node_tools import run_node

COMPONENTS = [c.name for c in SYSTEM.components]


def test_the_system_is_found_by_its_entry_point_its_module_and_its_package():
    assert load("order-fulfilment") is SYSTEM
    assert load("order_fulfilment") is SYSTEM
    assert load("order_fulfilment.agents.system:SYSTEM") is SYSTEM
    assert load("opengym") is not SYSTEM


def test_its_catalog_passes_the_ownership_test_and_its_apps_read_what_the_catalog_says():
    catalog = default_catalog(SYSTEM)
    problems = check(catalog, SYSTEM.topics.all, load_contracts(SYSTEM), SYSTEM.names, outputs(SYSTEM))
    problems += check_subscriptions(catalog, load_subscriptions(SYSTEM), SYSTEM.topics.all)
    assert problems == []


def test_warehouse_orchestrates_inside_while_it_takes_part_in_the_choreography():
    catalog = default_catalog(SYSTEM)
    fulfilment = catalog.transaction("Order Fulfilment")
    assert fulfilment.orchestration.owner == "warehouse"
    assert fulfilment.orchestration.trigger == "OrderPlaced", "it reacts to Order's terminal event"
    assert fulfilment.orchestration.participants == ("pickers",)
    assert [f.producer for f in fulfilment.choreography.facts] == ["order", "warehouse", "shipping", "notifications"]
    assert "warehouse" in fulfilment.choreography.producers


def test_a_broken_declaration_is_caught_the_same_way_as_opengyms():
    catalog = default_catalog(SYSTEM)
    problems = check(catalog, [t for t in SYSTEM.topics.all if t.name != "shop.pickers.events"],
                     load_contracts(SYSTEM), SYSTEM.names)
    assert any("PickConfirmed is carried by 0 contract topics" in p for p in problems), problems


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_builds_its_own_app_in_its_own_namespace(component):
    spec = SYSTEM.component(component)
    built = importlib.import_module(spec.module).build()
    assert built.name == component and built.metrics_port == spec.metrics_port
    assert built.app.conf.id.endswith(f"shop-{component}"), "its consumer group is its own, not OpenGym's"
    for agent in built.runtime.agents.values():
        assert agent.concurrency == 1


def test_every_topic_owner_is_a_registered_component_and_every_name_is_its_own():
    assert {t.owner for t in topics.CATALOG.all} == set(COMPONENTS)
    assert all(t.name.startswith("shop.") for t in topics.CATALOG.all)


def test_its_contracts_are_in_the_shop_namespace_and_its_models_do_not_drift():
    mine = load_contracts(SYSTEM).of_tree(SYSTEM.schemas)
    assert len(mine) == 31
    assert {c.namespace.split(".")[0] for c in mine} == {"shop"}
    for path, source in modelgen.outputs(SYSTEM).items():
        assert path.read_text() == source, f"{path} drifted: run `opengym --system order-fulfilment contracts generate`"


def test_its_generated_documents_are_up_to_date():
    assert docs_path(SYSTEM) == REPO_ROOT / "examples" / "order_fulfilment" / "docs" / "catalog.md"
    assert docs_path(SYSTEM).read_text() == render_system(SYSTEM), \
        "run `opengym --system order-fulfilment catalog docs`"
    assert SYSTEM.asyncapi_path().read_text() == render_asyncapi(asyncapi_document(SYSTEM)), \
        "run `opengym --system order-fulfilment catalog asyncapi`"
    assert settings_path(SYSTEM).read_text() == render_settings(SYSTEM), \
        "run `opengym --system order-fulfilment settings docs`"


def test_its_settings_table_lists_its_knobs_and_none_of_opengyms():
    table = render_settings(SYSTEM)
    assert "OPENGYM_WAREHOUSE_PICK_TIMEOUT_MS" in table and "OPENGYM_PICKERS_LATE_SHARE" in table
    assert "OPENGYM_BOOKING_TIMEOUT_MS" not in table


def test_the_asyncapi_parser_reads_its_document_without_error():
    (report,) = run_node("asyncapi-validate.mjs", str(SYSTEM.asyncapi_path()))
    problems = [d for d in report["diagnostics"]
                if d["severity"] in (0, 1) or d["code"] not in {"asyncapi-latest-version"}]
    assert report["document"] is not None and problems == []


def test_the_commands_check_its_documents_when_opengym_system_names_it():
    for argv in (["catalog", "check"], ["catalog", "docs", "--check"], ["catalog", "asyncapi", "--check"],
                 ["contracts", "check"]):
        result = subprocess.run([sys.executable, "-m", "opengym_streams.cli", "--system", "order-fulfilment", *argv],
                                capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
        assert result.returncode == 0, f"{argv}: {result.stdout}{result.stderr}"
    assert "11 processes" in subprocess.run(
        [sys.executable, "-m", "opengym_streams.cli", "catalog", "check"], capture_output=True, text=True,
        timeout=300, cwd=REPO_ROOT, env={**os.environ, "OPENGYM_SYSTEM": "order_fulfilment"}).stdout


def test_every_opengym_variable_its_code_reads_is_a_declared_knob():
    import re

    from opengym_streams.commands.settings import all_knobs

    declared = set(all_knobs(SYSTEM))
    named = set()
    for path in (REPO_ROOT / "examples" / "order_fulfilment").rglob("*.py"):
        named |= set(re.findall(r"OPENGYM_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    undeclared = sorted(n for n in named - declared if not n.startswith("OPENGYM_PROCESS"))
    assert undeclared == [], f"read from the environment but not declared as knobs: {undeclared}"
