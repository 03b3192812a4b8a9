"""What a management command loads before it does anything.

Django runs its system checks before every command. Some exist for serving pages and import half
the application to do it: the URL checks import every view module of every area (with Django REST
framework and drf-spectacular), the admin's and the template checks build the template engine,
which imports every template tag library (REST framework's brings psycopg and pygments), REST
framework's pagination check imports its serializers. That was most of a command's start-up, for a
command that imports a folder or writes an export and serves no page.

`skip_serving_checks` keeps, for such commands, the checks that concern them — models, database,
migrations, caches, files, translation settings, and this project's own (`datafix`: the broker, the
long-job settings, the proxies) — and leaves the rest to the commands that serve pages or exist to
check: `runserver`, `check` (`check --deploy` at release), `test`; the test suite loads every URL
and template anyway. Heavy libraries are imported on first use (config/lazy.py).

manage.py keeps the garbage collector off while Django and the apps load; `release_collection`
freezes what they made and turns it back on once every app is ready. What start-up makes (modules,
classes, functions: ~90,000 objects) lives as long as the process, yet the collector walked it in
its passes during the imports and once more at exit, finding nothing: about 0.1 s of every
command, a fifth of `--help`. The command itself runs collecting.
"""
from __future__ import annotations

import gc
from collections.abc import Sequence

# Commands that serve pages or exist to check: they keep every check.
FULLY_CHECKED_COMMANDS = frozenset({"runserver", "check", "test", "testserver"})
# The checks other commands keep (by tag); checks without tags are kept too.
COMMAND_CHECK_TAGS = frozenset({"models", "database", "commands", "caches", "files", "translation", "datafix"})


def skip_serving_checks(argv: Sequence[str]) -> bool:
    """Leave the serving checks out of this run of `manage.py` unless its command serves pages or
    checks; returns whether it did."""
    command = argv[1] if len(argv) > 1 else ""
    if not command or command.startswith("-") or command in FULLY_CHECKED_COMMANDS:
        return False
    from django.core.checks import registry

    checks = registry.registry
    every_check = checks.get_checks

    def command_checks(include_deployment_checks=False):
        # Filtered when the checks run: apps register theirs while Django sets up, after this.
        return [check for check in every_check(include_deployment_checks)
                if not getattr(check, "tags", ()) or COMMAND_CHECK_TAGS & set(check.tags)]

    checks.get_checks = command_checks
    return True


_collection_held = False


def resume_collection_when_ready() -> None:
    """manage.py turned the garbage collector off first thing, before its imports: have
    `release_collection` turn it back on once every app is ready."""
    global _collection_held
    _collection_held = True


def release_collection() -> None:
    """Freeze what start-up made (`gc.freeze`: no collection walks it again) and turn the collector
    back on, if manage.py turned it off. Called by the last app to be ready (config.apps)."""
    global _collection_held
    if _collection_held:
        gc.freeze()
        gc.enable()
        _collection_held = False
