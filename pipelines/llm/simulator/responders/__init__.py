"""Answer generators for the LLM simulator, one module per kind of request.

The simulator loads the modules of every package in settings.LLM_SIMULATOR_RESPONDER_PACKAGES
(this one holds the answers to the engine's own kinds; an app adds a package for its kinds).
Each module defines:
    matches(request: dict) -> bool          # request = the parsed /v1/chat/completions JSON body
    respond(request: dict, rng: random.Random) -> str   # the assistant message content
and optionally PRIORITY (int, higher is tried first; default 0). The simulator tries modules in
priority order (then by module name) and falls back to a plain-text answer. `rng` is seeded from
the request body, so the same request always gets the same answer.
"""
import importlib
import pkgutil

from django.conf import settings


def load_responders():
    modules = []
    for package_name in settings.LLM_SIMULATOR_RESPONDER_PACKAGES:
        package = importlib.import_module(package_name)
        modules += [
            importlib.import_module(f"{package_name}.{info.name}")
            for info in pkgutil.iter_modules(package.__path__)
            if not info.name.startswith("_")
        ]
    return sorted(modules, key=lambda m: (-getattr(m, "PRIORITY", 0), m.__name__.rpartition(".")[2]))
