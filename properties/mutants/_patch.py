"""Applying a mutant: swap spec functions for their mutated versions, everywhere they are held.

spec/ imports handlers by name (`from spec._election import on_vote_request`), so a function
lives in several module namespaces at once: the defining module, every importer, and the
`spec` package's re-exports. Patching only the defining module would leave the importers
calling the original, and the mutant would silently do nothing. `patched` therefore finds
every loaded module of the target package that holds the *same object* under that name and
patches each one with `unittest.mock.patch.object`, undoing all of them on exit.

Only modules of the target package (`spec` and `spec.*`) are touched: properties/ imported
its own references to `spec.is_quorum` and friends, and those must stay original so the
invariants are not weakened by the bug they are meant to catch.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import ModuleType
from unittest import mock

__all__ = ["Replacement", "holders", "patched"]


@dataclass(frozen=True, slots=True)
class Replacement:
    """Replacement says: the function `name` defined in `module` becomes `function`."""

    module: str
    name: str
    function: Callable[..., object]


def _load_package(package: str) -> list[ModuleType]:
    """Import every submodule of `package`, so no holder is missed because it was not loaded."""
    root = importlib.import_module(package)
    paths = getattr(root, "__path__", None)
    if paths is not None:
        for info in pkgutil.iter_modules(paths, prefix=f"{package}."):
            importlib.import_module(info.name)
    return [
        module
        for name, module in sorted(sys.modules.items())
        if module is not None and (name == package or name.startswith(f"{package}."))
    ]


def holders(module: str, name: str) -> list[tuple[ModuleType, str]]:
    """holders lists every (module, attribute) of the package that holds module.name.

    Raises LookupError when the target does not exist, so a typo in the catalogue fails loudly
    instead of producing a mutant that changes nothing.
    """
    defining = importlib.import_module(module)
    try:
        original = getattr(defining, name)
    except AttributeError as missing:
        raise LookupError(f"{module} has no attribute {name!r}") from missing
    package = module.split(".", 1)[0]
    found = [
        (candidate, attribute)
        for candidate in _load_package(package)
        for attribute, value in vars(candidate).items()
        if value is original
    ]
    if not found:  # pragma: no cover - the defining module always holds it
        raise LookupError(f"{module}.{name} is held nowhere")
    return found


@contextmanager
def patched(replacements: Sequence[Replacement]) -> Iterator[list[str]]:
    """patched applies every replacement in every holder; yields the patched dotted names."""
    with ExitStack() as stack:
        applied: list[str] = []
        for replacement in replacements:
            for holder, attribute in holders(replacement.module, replacement.name):
                stack.enter_context(mock.patch.object(holder, attribute, replacement.function))
                applied.append(f"{holder.__name__}.{attribute}")
        yield applied
