"""The "dpo" job kind: one item per prompt of the source; the job's report is the batch check."""
from __future__ import annotations

from typing import Any

from ..jobs.kinds import JobKindHandler, register
from ..models import Job, JobKind
from .model import llm_for
from .pairs import build_pairs, generate, prepare_record
from .params import clean_params
from .services import job_checks, pairs_store
from .sources import source_keys, source_record

@register
class DpoHandler(JobKindHandler):
    """One item per prompt: prepare (messages or a model-free reject) → model call → checked pairs."""

    kind = JobKind.DPO
    queue = "dpo"  # model calls for rejects are long: keep them off the default queue

    def clean_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return clean_params(params)

    def item_keys(self, job: Job):
        return source_keys(job.params)

    def prepare(self, job: Job, key: str) -> dict[str, Any]:
        # Per-job caches (file index, near-miss index) are keyed by the job's identity, never reused.
        token = (job.pk, job.created_at.isoformat())
        record = source_record(job.params["source"], key, cache_token=token)
        return prepare_record(job.params, record, cache_token=token)

    async def call(self, llm, payload: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
        if "candidates" in payload:
            return payload["candidates"]
        client, owned = llm_for(params["strategy"], llm)
        try:
            return await generate(client, payload, params)
        finally:
            if owned:
                await client.aclose()

    def store(self, job: Job, key: str, payload: dict[str, Any], output: list[dict[str, Any]]) -> dict[str, Any]:
        pairs = build_pairs(payload["record"], output, job.params["strategy"])
        pairs_store(job=job, pairs=pairs)
        return {"pairs": len(pairs), "issues": sorted({i for p in pairs for i in p["issues"]})}

    def finalize(self, job: Job) -> dict[str, Any]:
        return job_checks(job)
