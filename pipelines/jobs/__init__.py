"""Jobs: create, run, cancel, resume and retry jobs of any kind; a kind plugs in through kinds.py.

`kinds` (the job-kind contract and registry), `services` (job_create, job_cancel, job_resume,
job_retry_failed), `engine` (job_execute: one execution of a job), `leases` (who runs a job, dead
executions), `recovery` (jobs whose message or execution was lost), `tasks` (the Celery task and the
only place that sends its messages), `workers` (what runs in a worker's main process), `selectors`
(progress, labels), `monitor` (the queue monitor's reads), `params` (per-job provider overrides),
`prompts` (the editable prompt templates) and the pages: `views`, `forms`, `urls`.

How a job runs
--------------
`job_create` validates the parameters through the kind's handler, writes one JobItem per key and
enqueues one Celery message after the transaction commits. The task (`pipelines.run_job`,
pipelines/jobs/tasks.py) calls `job_execute`, which:

1. takes the job's **lease** (Job.lease_token + heartbeat_at) in a locked transaction. A second
   delivery of the same message finds the lease held by a live execution and does nothing, so it
   never doubles the model calls. A lease is stale when its heartbeat is older than
   JOB_LEASE_SECONDS, or at once when its owner was a process on this host that no longer exists
   (a worker child killed with SIGKILL). Taking a stale lease puts the dead execution's claimed
   items back to pending;
2. counts the delivery (Job.deliveries, reset as soon as a delivery stores an item) and gives the
   job up after JOB_MAX_DELIVERIES deliveries in a row that got nothing done (a job that kills its
   worker every time);
3. claims pending items in small batches (`UPDATE … WHERE status='pending'`, so an item is claimed
   once), reads what each needs in this thread (`handler.prepare`), and runs `handler.call` on an
   asyncio loop in a helper thread. It hands the loop half as many items again as `concurrency`;
   the model client's semaphore lets `concurrency` calls run and starts a waiting one the moment
   one finishes, so the slots never wait for this thread, which stores and claims in batches. The
   database is only touched from the calling thread; the loop thread only does network I/O;
4. stores finished items in one transaction per batch (`handler.store`, idempotent) and marks them
   done or failed with a stable reason. Items that were running when a worker died run last, one at
   a time; one already claimed JOB_MAX_DELIVERIES times without an outcome (it crashed the worker
   each time) is failed as `max_deliveries` instead of being claimed again;
5. renews the lease every JOB_HEARTBEAT_SECONDS, refreshes the counters and reads the status, so a
   cancel stops dispatching within about a second (in-flight calls are abandoned and their items go
   back to pending, done items stay done);
6. after a time budget below the Celery soft time limit, starts no more model calls (queued ones
   and retries raise RequestsClosed), stores the calls already sent, puts the rest back to pending
   and re-enqueues a continuation message, so no message outlives the Redis visibility timeout
   however long the job is. On SoftTimeLimitExceeded it puts every unfinished item back at once.

Handlers may also define `prepare_many(job, keys) -> {key: payload or ItemFailed}` and
`store_many(job, [(key, payload, output)]) -> {key: result or ItemFailed}` to read and write a
batch of items in a few queries (the classification kind does); the engine falls back to the
per-item methods when they are absent or raise. An optional `checkpoint(job, state)` is called on a
heartbeat after items were stored (`state`: a dict kept for this execution, empty at its start), so
a kind can show its progress outside the database while it runs (generation grows its files); an
error there is logged, never the job's failure.

`store` may write rows and then raise ItemFailed (e.g. an unparseable answer is still recorded as a
Reasoning row): those writes are kept and the item is failed with that reason. Any other exception
from `store` rolls its writes back and fails the item as `error`.
"""
