"""Order fulfilment, the second system built on the library (the seed's e-commerce flow): Order places an
order (OrderPlacementOrchestration, with Payments as its participant), Warehouse reacts to OrderPlaced and
orchestrates the picking inside (PickingOrchestration, with Pickers as its participant), Shipping generates
the label, Notifications tells the customer. The flow across the four owners is a choreography; Warehouse
takes part in it while orchestrating inside: the "level problem".

Same inner shape as OpenGym: ``agents/`` (one package per component, and ``agents/system.py``, the
declaration), ``topics/`` (the topic catalog), ``schemas/`` (the contracts, namespace ``shop.<owner>``),
``models.py`` (generated from them), ``demo/`` (its demo) and ``docs/`` (its generated documents).
``SYSTEM`` is the declaration (``OPENGYM_SYSTEM=order_fulfilment``, or the ``order-fulfilment`` entry point).
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == "SYSTEM":  # imported when asked: the declaration imports the components' step tables
        from order_fulfilment.agents.system import SYSTEM

        return SYSTEM
    raise AttributeError(name)
