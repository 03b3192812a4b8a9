"""Processes that run plain functions for this one, on another core: for Python work (parsing,
checking, hashing) that threads would run one at a time under the interpreter's lock.

`worker_processes(n, settings=…)` is a `ProcessPoolExecutor` of `n` spawned processes — not forked:
the caller has threads and database connections open — each given only the named settings of this
process (a test's overrides included). A spawned process loads no project settings and no apps, so
it starts in a fraction of a second, and only when the first task is submitted; the functions it
runs must live in modules that import no models. Like every spawned process, it imports the
caller's main module again: a script that starts one needs the `if __name__ == "__main__":` guard
(manage.py, pytest and Celery have it).
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor

from django.conf import settings


def worker_processes(workers: int, *, setting_names: Iterable[str] = ()) -> ProcessPoolExecutor:
    """`workers` spawned processes with this process's values of `setting_names`."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_configure,
                               initargs=({name: getattr(settings, name) for name in setting_names},))


def may_start_processes() -> bool:
    """False in a daemonic process (a multiprocessing pool's worker), which may not start any."""
    return not multiprocessing.current_process().daemon


def _configure(values: dict) -> None:
    if not settings.configured:
        settings.configure(**values)
