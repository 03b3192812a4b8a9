"""Answer generators for the LLM simulator, one module per kind of request.

Each module defines:
    matches(request: dict) -> bool          # request = the parsed /v1/chat/completions JSON body
    respond(request: dict, rng: random.Random) -> str   # the assistant message content
and optionally PRIORITY (int, higher is tried first; default 0). The simulator tries modules in
priority order and falls back to a plain-text answer. `rng` is seeded from the request body, so
the same request always gets the same answer.
"""
import importlib
import pkgutil


def load_responders():
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return sorted(modules, key=lambda m: getattr(m, "PRIORITY", 0), reverse=True)
