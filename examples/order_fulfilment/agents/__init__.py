"""Order fulfilment's components, one package each (a Faust app each), and ``system.py``, the declaration."""
