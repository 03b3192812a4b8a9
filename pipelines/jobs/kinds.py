"""How a job kind plugs into the job engine.

A job kind says which items a job has and how to process one item. The engine
(`pipelines/jobs/`: services, engine, tasks) owns everything else: creating the JobItem
rows, dispatching through Celery after commit, running up to `concurrency` items at once under the
requests-per-minute limit, retries, cancel / resume / retry-failed, counters, the final report.

Processing one item is split in three so that the network part holds no database connection:

    payload = handler.prepare(job, key)            # sync: read what the item needs from the DB
    output  = await handler.call(llm, payload, job.params)   # async: model calls only, no DB
    result  = handler.store(job, key, payload, output)       # sync: idempotent write, returns JSON

Any of the three may raise `ItemFailed(kind, message)`: the item is marked failed with that reason
and the job goes on. `store` must be idempotent (update_or_create on a natural key): with
at-least-once delivery an item can be processed twice, and must still leave one row.
"""
from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings

if TYPE_CHECKING:
    from ..llm.client import LLMClient
    from ..models import Job


class ItemFailed(Exception):
    """One item could not be processed; `kind` is a short stable reason (e.g. "content_filter")."""

    def __init__(self, kind: str, message: str = ""):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message or kind


class JobKindHandler:
    """Base class for a job kind. Subclass, set `kind` and `queue`, and decorate with @register."""

    kind: ClassVar[str]
    queue: ClassVar[str] = "default"
    # Whether items need the model client (model-free kinds skip building one).
    uses_llm: ClassVar[bool] = True
    # Parameters that `clean_params` pins to the newest version of something editable (a prompt
    # template) when they are absent. "Retry failed items" drops them so they are pinned afresh:
    # the retry uses the prompt as fixed after the run, which is what a retry is usually for.
    repinned_on_retry: ClassVar[tuple[str, ...]] = ()
    # The form that starts a job of this kind from the generic start page (`/jobs/new/<kind>/`):
    # its `job_params()` gives the parameters. None: the kind is started elsewhere.
    form_class: ClassVar[type | None] = None

    def start_url(self, start: str, query: Mapping[str, str]) -> str | None:
        """Where `/jobs/new/?kind=<start>&…` leads when `start` names a start page this kind has of
        its own (not a job kind, e.g. a re-run linked from another page): its URL, or None."""
        return None

    def clean_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validate and normalise job parameters; raise core.errors.ApplicationError if bad."""
        return params

    def item_keys(self, job: Job) -> Iterable[str]:
        """The keys of the job's items, computed once when the job is created."""
        raise NotImplementedError

    def prepare(self, job: Job, key: str) -> Any:
        return key

    async def call(self, llm: LLMClient | None, payload: Any, params: dict[str, Any]) -> Any:
        return payload

    def store(self, job: Job, key: str, payload: Any, output: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    def finalize(self, job: Job) -> dict[str, Any]:
        """The job's report once every item has an outcome (stored in Job.report)."""
        return {}


_REGISTRY: dict[str, JobKindHandler] = {}


def register(handler_cls: type[JobKindHandler]) -> type[JobKindHandler]:
    _REGISTRY[handler_cls.kind] = handler_cls()
    return handler_cls


def get_handler(kind: str) -> JobKindHandler:
    _import_kind_modules()
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise LookupError(f"no handler registered for job kind {kind!r}") from None


def start_url(start: str, query: Mapping[str, str]) -> str | None:
    """The start page a registered kind declares for `/jobs/new/?kind=<start>&…`, or None."""
    _import_kind_modules()
    for handler in _REGISTRY.values():
        url = handler.start_url(start, query)
        if url is not None:
            return url
    return None


@functools.cache
def _import_kind_modules() -> None:
    """Job kinds live in their own modules, the ones each app lists in settings.JOB_KIND_MODULES;
    importing them registers them. A listed module that does not import is a configuration error."""
    for name in settings.JOB_KIND_MODULES:
        importlib.import_module(name)
