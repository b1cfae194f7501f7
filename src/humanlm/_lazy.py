"""Package attributes imported on first use, so that importing a package stays light.

Example:
    >>> _WHERE = {"EvalConfig": "config", "run_eval": "run"}  # name -> module of the package
    >>> __getattr__ = lazy_exports("humanlm.eval", _WHERE)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``package.<where[name]>`` when ``name`` is first read.

    Args:
        package: the package's ``__name__``.
        where: attribute name -> the module below ``package`` that defines it.
    """

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{where[name]}"), name)

    return __getattr__
