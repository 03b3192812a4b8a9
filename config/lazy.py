"""Heavy libraries imported on first use, not when Django starts.

Every management command imports the URL configuration (Django's system checks do), hence every
view module and what those import. The model client's `openai`/`aiohttp` and the near-duplicate
finder's `numpy`/`datasketch` (with `scipy`) took most of a command's 1.65 s start-up, though a
command that imports a folder never calls a model nor deduplicates. Modules that need them write

    openai = lazy_module("openai")

and use `openai.AsyncOpenAI` as before: the real import happens at the first attribute access,
under Python's import lock (so two threads asking at once get the same module).
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A stand-in for a module that imports it on first attribute access."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def _load(self) -> ModuleType:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._load(), attribute)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_module(name: str) -> Any:
    """`name` imported on first use (typed Any: it stands for the module)."""
    return LazyModule(name)
