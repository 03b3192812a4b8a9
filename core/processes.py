"""Processes that run plain functions for this one, on another core: for Python work (parsing,
checking, hashing) that threads would run one at a time under the interpreter's lock.

`worker_processes(n, setting_names=…)` is a `ProcessPoolExecutor` of `n` spawned processes — not
forked: the caller has threads and database connections open — each given the named settings of
this process (a test's overrides included). By default a spawned process loads no project settings
and no apps, so it starts in a fraction of a second (when the first task is submitted), and runs
functions of modules that import no models; `with_apps=True` sets Django up in it first. Like every
spawned process, it imports the caller's main module again: a script that starts one needs the
`if __name__ == "__main__":` guard (manage.py, pytest and Celery have it).
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor

from django.conf import settings


def worker_processes(workers: int, *, setting_names: Iterable[str] = (), with_apps: bool = False,
                     ) -> ProcessPoolExecutor:
    """`workers` spawned processes with this process's values of `setting_names`. `with_apps`: the
    processes load this process's settings module and the apps (`django.setup()`, ~0.5 s more),
    for functions in modules that import models."""
    values = {name: getattr(settings, name) for name in setting_names}
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_configure,
                               initargs=(values, _settings_module() if with_apps else None))


def may_start_processes() -> bool:
    """False in a daemonic process (a multiprocessing pool's worker), which may not start any."""
    return not multiprocessing.current_process().daemon


def _settings_module() -> str:
    # Overridden settings (a test's) hide the module's name behind a holder whose own is None.
    return settings.SETTINGS_MODULE or os.environ["DJANGO_SETTINGS_MODULE"]


def _configure(values: dict, settings_module: str | None) -> None:
    if settings_module is None:
        if not settings.configured:
            settings.configure(**values)
        return
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    django.setup()
    for name, value in values.items():
        setattr(settings, name, value)
