"""One execution of a job (`job_execute`): take the lease, claim items in batches, run the kind's
model calls on an asyncio loop in a helper thread, store the outcomes, hand over to a continuation
when the time slice is spent. How and why: the package docstring (pipelines/jobs/__init__.py)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from ..llm.client import LLMClient
from ..llm.errors import LLMError, RequestsClosed
from ..models import ItemStatus, Job, JobItem, JobStatus
from .kinds import ItemFailed, JobKindHandler, get_handler
from .leases import lease_acquire, lease_heartbeat, lease_release, new_lease_token, refresh_counters, release_items
from .params import llm_for_job
from .selectors import JobProgress, error_label, job_progress

logger = logging.getLogger(__name__)

COLLECT_SECONDS = 0.05
RATE_SAVE_SECONDS = 5.0


def _scrub(text: str) -> str:
    """Error texts go to pages and reports: make sure the API key can never be among them."""
    key = settings.OPENAI_API_KEY
    text = str(text)
    if key and len(key) >= 6:
        text = text.replace(key, "***")
    return text[:2000]


def _mark_items_done(results: list[tuple[int, Any]], finished_at) -> None:
    """Mark items done with their results: one statement run for every row (executemany).

    Not `bulk_update`: its CASE WHEN expression over every row was the costliest part of storing a
    batch (the engine's thread shares the GIL with the model calls, so that cost was throughput).
    Values go through the fields' own adaptation, as the ORM would do.
    """
    meta = JobItem._meta
    quote = connection.ops.quote_name
    result_field, finished_field = meta.get_field("result"), meta.get_field("finished_at")
    sql = (f"UPDATE {quote(meta.db_table)} SET {quote('status')} = %s, {quote('result')} = %s, "
           f"{quote('error_kind')} = '', {quote('error')} = '', {quote('finished_at')} = %s WHERE {quote('id')} = %s")
    finished = finished_field.get_db_prep_save(finished_at, connection)
    rows = [(ItemStatus.DONE.value, result_field.get_db_prep_save(result, connection), finished, item_id)
            for item_id, result in results]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


# --------------------------------------------------------------------------- execution
class _LoopThread:
    """An asyncio loop in a daemon thread: the model calls run here, the database stays in ours."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="job-llm-loop", daemon=True)
        self.thread.start()

    def submit(self, coro) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self, llm: LLMClient | None) -> None:
        async def shutdown():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if llm is not None:
                await llm.aclose()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=10)
        except Exception:  # noqa: BLE001 - closing must not hide the job's outcome
            logger.warning("job loop did not shut down cleanly", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


def slice_seconds() -> float:
    """How long one task runs a job before handing over to a continuation message."""
    soft = settings.CELERY_TASK_SOFT_TIME_LIMIT or 55 * 60
    return max(60.0, soft - settings.LLM_TIMEOUT * 2 - 60)


def job_execute(*, job_id: int, time_budget: float | None = None,
                on_progress: Callable[[JobProgress], None] | None = None) -> str:
    """Run a job's pending items until none is left, the job is cancelled or the budget is spent.

    Returns "done", "failed", "cancelled", "continue" (budget spent; enqueue a continuation),
    "busy" (another execution holds the lease), "finished" (nothing to do), "lost" (the lease was
    taken over) or "missing".
    """
    token = new_lease_token()
    outcome, job = lease_acquire(job_id, token)
    if outcome != "run":
        logger.info("job %s: %s", job_id, outcome)
        return outcome
    try:
        handler = get_handler(job.kind)
        return _Execution(job, handler, token, time_budget, on_progress).run()
    except Exception as exc:
        # A bug or a lost database: show it on the job (resume is possible) and let Celery record it.
        logger.exception("job %s crashed", job_id)
        try:
            JobItem.objects.filter(job_id=job_id, status=ItemStatus.RUNNING).update(status=ItemStatus.PENDING)
            refresh_counters(job_id)
            lease_release(job_id, token, status=JobStatus.FAILED, finished_at=timezone.now(),
                           error_summary=_scrub(f"任务中断（程序错误）：{type(exc).__name__}: {exc}"))
        except Exception:  # noqa: BLE001 - the database itself may be what failed
            logger.exception("job %s: could not record the crash", job_id)
        raise
    finally:
        lease_release(job_id, token)


class _Execution:
    def __init__(self, job: Job, handler: JobKindHandler, token: str, time_budget: float | None,
                 on_progress: Callable[[JobProgress], None] | None):
        self.job = job
        self.handler = handler
        self.token = token
        self.params = dict(job.params)
        self.concurrency = int(self.params.get("concurrency") or settings.LLM_CONCURRENCY)
        self.deadline = time.monotonic() + time_budget if time_budget else None
        self.on_progress = on_progress
        self.heartbeat_every = settings.JOB_HEARTBEAT_SECONDS
        self.max_attempts = settings.JOB_MAX_DELIVERIES
        self.llm = llm_for_job(self.params, job.report) if handler.uses_llm else None
        # With a model client, more items than `concurrency` are handed to the loop: the client's
        # semaphore holds the extra ones back, and each starts the moment a call finishes, without
        # waiting for this thread to store results and claim more (which it then does in batches).
        # Kinds without one (file imports) have no such gate: exactly `concurrency` in flight.
        self.in_flight_target = self.concurrency + (self.concurrency // 2 if self.llm is not None else 0)
        self.claim_batch = max(1, self.concurrency // 4)
        self.in_flight: dict[concurrent.futures.Future, tuple[int, str, Any]] = {}
        self.progressed = False
        self.checkpoint_state: dict[str, Any] = {}
        self.stored_since_checkpoint = False
        # Fail fast on configuration errors: the same config_error N times in a row stops the job.
        self.config_limit = settings.JOB_CONFIG_ERROR_LIMIT
        self.config_streak: tuple[str, int] = ("", 0)
        self.config_stop: str | None = None
        self.rate_saved_at = time.monotonic()  # the first save after RATE_SAVE_SECONDS, not before any call

    # -- the loop
    def run(self) -> str:
        loop = _LoopThread()
        stop: str | None = None
        try:
            last_beat = 0.0
            exhausted = False
            while True:
                now = time.monotonic()
                if now - last_beat >= self.heartbeat_every:
                    last_beat = now
                    status = lease_heartbeat(self.job.pk, self.token)
                    if status is None:
                        stop = "lost"
                    elif status == JobStatus.CANCELLING:
                        stop = "cancel"
                    self._report_progress()
                    if now - self.rate_saved_at >= RATE_SAVE_SECONDS:
                        self.rate_saved_at = now
                        self._save_rate()
                if stop is None and self.config_stop:
                    stop = "config"
                if stop is None and self.deadline and now >= self.deadline:
                    stop = "budget"
                    if self.llm is not None:
                        # Calls already sent finish and are stored; queued ones and retries don't start
                        # (their items go back to pending), so the slice ends within one call's time.
                        self.llm.close_to_new_requests()
                if stop in ("lost", "cancel", "config"):
                    break
                free = self.in_flight_target - len(self.in_flight)
                if stop is None and not exhausted and (free >= self.claim_batch or len(self.in_flight) < self.concurrency):
                    claimed = self._claim(free)
                    if not claimed:
                        exhausted = True
                    self._dispatch(loop, claimed)
                if not self.in_flight:
                    if exhausted or stop:
                        break
                    continue
                done, _ = concurrent.futures.wait(
                    list(self.in_flight), timeout=min(self.heartbeat_every, 0.5),
                    return_when=concurrent.futures.FIRST_COMPLETED,
                )
                if done and len(self.in_flight) - len(done) > self.concurrency:
                    # Queued calls keep every slot busy meanwhile: collect a few more finished items so
                    # that storing and claiming happen in batches, not once per item.
                    done, _ = concurrent.futures.wait(list(self.in_flight), timeout=COLLECT_SECONDS,
                                                      return_when=concurrent.futures.ALL_COMPLETED)
                if done:
                    # Forgotten only once stored: if the soft time limit strikes inside _store (its
                    # transaction rolls back), they are still in flight and get stored on the way out.
                    self._store([(self.in_flight[f], f) for f in done])
                    for future in done:
                        del self.in_flight[future]
                    exhausted = False  # finished items free slots; look for more work
        except SoftTimeLimitExceeded:
            stop = "budget"
        finally:
            self._abandon_in_flight(release=stop != "lost")
            loop.close(self.llm)
        self._save_llm_stats()
        if stop == "lost":
            return "lost"
        if stop == "config":
            # Every further item would fail the same way: stop with one message; the items not
            # yet run stay pending, so "继续" runs them once the configuration is fixed.
            refresh_counters(self.job.pk)
            lease_release(self.job.pk, self.token, status=JobStatus.FAILED, finished_at=timezone.now(),
                           error_summary=_scrub(self.config_stop))
            return "failed"
        if stop == "cancel":
            refresh_counters(self.job.pk)
            lease_release(self.job.pk, self.token, status=JobStatus.CANCELLED, finished_at=timezone.now())
            return "cancelled"
        if stop == "budget":
            refresh_counters(self.job.pk)
            # Queued again until the continuation message is sent (the sweeper resends it if it can't be).
            lease_release(self.job.pk, self.token, deliveries=0, status=JobStatus.QUEUED, enqueued_at=None)
            return "continue"
        return self._finalize()

    # -- claiming and dispatching
    def _claim(self, n: int) -> list[tuple[int, str]]:
        """Up to `n` pending items marked running, as (id, key); [] when none is left to run now."""
        pending = JobItem.objects.filter(job_id=self.job.pk, status=ItemStatus.PENDING)
        ids = list(pending.filter(attempts=0).order_by("id").values_list("id", flat=True)[:n])
        if not ids:
            # Items that were running when a worker died go last and one at a time with nothing else
            # in flight, so an item that kills its worker takes no innocent items down with it.
            if self.in_flight:
                return []
            # One already claimed JOB_MAX_DELIVERIES times without an outcome (it crashed the worker
            # each time) is given up straight from pending: it is never marked running again.
            pending.filter(attempts__gte=self.max_attempts).update(
                status=ItemStatus.FAILED, error_kind="max_deliveries", result=None, finished_at=timezone.now(),
                error=f"该条目已被领取 {self.max_attempts} 次仍未完成（可能导致了进程崩溃）",
            )
            ids = list(pending.order_by("id").values_list("id", flat=True)[:1])
        if not ids:
            return []
        claimed_at = timezone.now()
        JobItem.objects.filter(pk__in=ids, status=ItemStatus.PENDING).update(
            status=ItemStatus.RUNNING, attempts=F("attempts") + 1, started_at=claimed_at
        )
        return list(
            JobItem.objects.filter(pk__in=ids, status=ItemStatus.RUNNING, started_at=claimed_at)
            .order_by("id").values_list("id", "key")
        )

    def _dispatch(self, loop: _LoopThread, claimed: list[tuple[int, str]]) -> None:
        prepare_many = getattr(self.handler, "prepare_many", None)
        payloads: dict[str, Any] = {}
        if prepare_many is not None and len(claimed) > 1:
            try:
                payloads = prepare_many(self.job, [key for _, key in claimed])
            except SoftTimeLimitExceeded:
                raise  # the slice is over: never an item's failure
            except Exception:  # noqa: BLE001 - fall back to one item at a time
                logger.exception("job %s: prepare_many failed; preparing items one by one", self.job.pk)
                payloads = {}
        for item_id, key in claimed:
            try:
                payload = payloads[key] if key in payloads else self.handler.prepare(self.job, key)
                if isinstance(payload, ItemFailed):
                    raise payload
            except ItemFailed as exc:
                self._fail(item_id, exc.kind, exc.message)
                continue
            except SoftTimeLimitExceeded:
                raise  # the slice is over: never an item's failure
            except Exception as exc:  # noqa: BLE001 - one bad item never stops the job
                logger.exception("job %s item %s: prepare failed", self.job.pk, key)
                self._fail(item_id, "error", f"{type(exc).__name__}: {exc}")
                continue
            future = loop.submit(self.handler.call(self.llm, payload, self.params))
            self.in_flight[future] = (item_id, key, payload)

    def _abandon_in_flight(self, *, release: bool) -> None:
        if not self.in_flight:
            return
        if release:
            # Calls that already came back are stored rather than thrown away.
            finished = [f for f in self.in_flight if f.done() and not f.cancelled()]
            if finished:
                self._store([(self.in_flight.pop(f), f) for f in finished])
        ids = [item_id for item_id, _, _ in self.in_flight.values()]
        for future in self.in_flight:
            future.cancel()
        self.in_flight.clear()
        if release:
            release_items(ids)

    # -- outcomes
    def _fail(self, item_id: int, kind: str, message: str) -> None:
        JobItem.objects.filter(pk=item_id).exclude(status=ItemStatus.DONE).update(
            status=ItemStatus.FAILED, error_kind=kind[:64], error=_scrub(message), result=None,
            finished_at=timezone.now(),
        )
        if kind != "config_error":
            return
        signature, count = self.config_streak
        count = count + 1 if message == signature else 1
        self.config_streak = (message, count)
        if count >= self.config_limit and not self.config_stop:
            self.config_stop = (f"已停止：连续 {count} 个条目因相同的配置错误失败，其余条目未运行。{message}。"
                                "请检查模型名称、API 密钥和参数（例如评判模型的 temperature），修正后点“继续”。")
            logger.warning("job %s stopped on a configuration error: %s", self.job.pk, message)

    def _store(self, finished: list[tuple[tuple[int, str, Any], concurrent.futures.Future]]) -> None:
        self.stored_since_checkpoint = True
        with transaction.atomic():
            successes: list[tuple[int, str, Any, Any]] = []
            not_started: list[int] = []
            for (item_id, key, payload), future in finished:
                try:
                    successes.append((item_id, key, payload, future.result()))
                except ItemFailed as exc:
                    self._fail(item_id, exc.kind, exc.message)
                except LLMError as exc:
                    self._fail(item_id, exc.kind, exc.message)
                except (concurrent.futures.CancelledError, RequestsClosed):
                    not_started.append(item_id)
                except Exception as exc:  # noqa: BLE001
                    logger.exception("job %s item %s: call failed", self.job.pk, key)
                    self._fail(item_id, "error", f"{type(exc).__name__}: {exc}")
            outcomes = self._store_many(successes) if successes else {}
            done = []
            now = timezone.now()
            for item_id, key, payload, output in successes:
                outcome = outcomes[item_id] if item_id in outcomes else self._store_one(key, payload, output)
                if isinstance(outcome, ItemFailed):
                    self._fail(item_id, outcome.kind, outcome.message)
                else:
                    done.append((item_id, outcome))
            if not_started:
                release_items(not_started)
            if done:
                self.config_streak = ("", 0)  # an answer in between: not a configuration error
                _mark_items_done(done, now)
                if not self.progressed:
                    # This delivery got work done: it is no poison job, whatever happened before.
                    self.progressed = True
                    Job.objects.filter(pk=self.job.pk).update(deliveries=0)

    def _store_many(self, successes: list[tuple[int, str, Any, Any]]) -> dict[int, Any]:
        """Results by item id from the handler's optional batch `store_many` ({} when it has none)."""
        store_many = getattr(self.handler, "store_many", None)
        if store_many is None or len(successes) < 2:
            return {}
        savepoint = transaction.savepoint()
        try:
            by_key = store_many(self.job, [(key, payload, output) for _, key, payload, output in successes])
        except SoftTimeLimitExceeded:
            raise  # the slice is over: never an item's failure
        except Exception:  # noqa: BLE001 - fall back to storing one by one
            transaction.savepoint_rollback(savepoint)
            logger.exception("job %s: store_many failed; storing items one by one", self.job.pk)
            return {}
        transaction.savepoint_commit(savepoint)
        return {item_id: by_key[key] for item_id, key, _, _ in successes if key in by_key}

    def _store_one(self, key: str, payload: Any, output: Any) -> Any:
        """The item's result, or the ItemFailed it ended with (store's writes kept for ItemFailed)."""
        savepoint = transaction.savepoint()
        try:
            result = self.handler.store(self.job, key, payload, output)
        except ItemFailed as exc:
            transaction.savepoint_commit(savepoint)  # what store wrote is kept
            return exc
        except SoftTimeLimitExceeded:
            raise  # the slice is over: never an item's failure
        except Exception as exc:  # noqa: BLE001
            transaction.savepoint_rollback(savepoint)
            logger.exception("job %s item %s: store failed", self.job.pk, key)
            return ItemFailed("error", f"{type(exc).__name__}: {exc}")
        transaction.savepoint_commit(savepoint)
        return result

    def _report_progress(self) -> None:
        refresh_counters(self.job.pk)
        self._checkpoint()
        if self.on_progress is not None:
            self.job.refresh_from_db(fields=["status", "started_at", "finished_at"])
            self.on_progress(job_progress(self.job))

    def _checkpoint(self) -> None:
        checkpoint = getattr(self.handler, "checkpoint", None)
        if checkpoint is None or not self.stored_since_checkpoint:
            return
        self.stored_since_checkpoint = False
        try:
            checkpoint(self.job, self.checkpoint_state)
        except SoftTimeLimitExceeded:
            raise  # the slice is over
        except Exception:  # noqa: BLE001 - a progress file must never fail the job
            logger.exception("job %s: checkpoint failed", self.job.pk)

    def _save_rate(self) -> None:
        """The model client's current request rate into the report, for the job page."""
        if self.llm is None:
            return
        snapshot = self.llm.rate_snapshot()
        with transaction.atomic():
            job = Job.objects.select_for_update().only("report").get(pk=self.job.pk)
            report = dict(job.report or {})
            engine = dict(report.get("engine") or {})
            if engine.get("rate") == snapshot:
                return
            engine["rate"] = snapshot
            report["engine"] = engine
            Job.objects.filter(pk=self.job.pk).update(report=report)

    def _save_llm_stats(self) -> None:
        if self.llm is None:
            return
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=self.job.pk)
            report = dict(job.report or {})
            engine = dict(report.get("engine") or {})
            previous = engine.get("llm") or {}
            current = self.llm.stats.as_dict()
            errors = dict(previous.get("errors") or {})
            for kind, n in current["errors"].items():
                errors[kind] = errors.get(kind, 0) + n
            engine["llm"] = {
                "requests": previous.get("requests", 0) + current["requests"],
                "succeeded": previous.get("succeeded", 0) + current["succeeded"],
                "retries": previous.get("retries", 0) + current["retries"],
                "errors": errors,
                "n_fallbacks": previous.get("n_fallbacks", 0) + current["n_fallbacks"],
            }
            engine["rate"] = self.llm.rate_snapshot()
            report["engine"] = engine
            job.report = report
            job.save(update_fields=["report"])

    def _finalize(self) -> str:
        done, failed = refresh_counters(self.job.pk)
        job = Job.objects.get(pk=self.job.pk)
        errors = dict(
            JobItem.objects.filter(job=job, status=ItemStatus.FAILED).values_list("error_kind").annotate(n=Count("id"))
        )
        summary_parts = [f"{error_label(kind)}×{n}" for kind, n in sorted(errors.items(), key=lambda kv: -kv[1])]
        try:
            kind_report = self.handler.finalize(job) or {}
        except Exception as exc:  # noqa: BLE001 - the items are stored; a report bug must not lose that
            logger.exception("job %s: finalize failed", job.pk)
            kind_report = {}
            summary_parts.append(f"生成报告失败：{type(exc).__name__}: {exc}")
        now = timezone.now()
        started = job.started_at or now
        seconds = max((now - started).total_seconds(), 1e-6)
        engine = dict((job.report or {}).get("engine") or {})
        engine.update({
            "items_total": done + failed,
            "items_done": done,
            "items_failed": failed,
            "errors_by_kind": errors,
            "duration_seconds": round(seconds, 2),
            "items_per_second": round((done + failed) / seconds, 2),
        })
        report = {**kind_report, "engine": engine}
        status = JobStatus.FAILED if failed and not done else JobStatus.DONE
        summary = (f"{failed} 个条目失败：" + "，".join(summary_parts)) if failed else "，".join(summary_parts)
        Job.objects.filter(pk=job.pk, lease_token=self.token).update(
            status=status, finished_at=now, report=report, error_summary=_scrub(summary), lease_token=""
        )
        return str(status)
