"""Run Python on a source tree laid out like this repository (``streams/`` imported as ``opengym_streams``,
``agents/`` as ``opengym.agents``, ...), without installing it: the package-dir mapping of its pyproject.toml
as an import finder, which is what an editable install does. For tests that change a copy of the tree."""

from __future__ import annotations

import sys
from pathlib import Path

BOOTSTRAP = """
import importlib.machinery, sys, tomllib
from pathlib import Path
_root = Path({root!r})
_map = tomllib.loads((_root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
class _SourceLayout:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in _map:
            where = _root / _map[name]
            return importlib.machinery.PathFinder.find_spec(name, [str(where.parent)]) if where.name == name \\
                else importlib.util.spec_from_file_location(name, where / "__init__.py",
                                                            submodule_search_locations=[str(where)])
        return None
import importlib.util
sys.meta_path.insert(0, _SourceLayout)
"""


def python(root: Path, *argv: str) -> list[str]:
    """argv running ``python -m MODULE ...`` or ``python -c CODE`` on the tree at ``root``."""
    boot = BOOTSTRAP.format(root=str(root))
    if argv[0] == "-m":
        code = boot + f"import runpy, sys; sys.argv = {[argv[1], *argv[2:]]!r}; runpy.run_module({argv[1]!r}, run_name='__main__', alter_sys=True)"
    elif argv[0] == "-c":
        code = boot + argv[1]
    else:
        raise ValueError("python(root, '-m', module, ...) or python(root, '-c', code)")
    return [sys.executable, "-c", code]
