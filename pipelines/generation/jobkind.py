"""The "generation" job kind: per source item, question → response → structure check → judge → one
GeneratedExample row; the run's files grow as it goes."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from core.errors import ApplicationError

from ..jobs.kinds import ItemFailed, JobKindHandler, register
from ..models import GeneratedExample, Job, JobKind, SourceItem
from . import judge as judge_module
from .params import DEFAULT_PARAMS, clean_params
from .prompts import is_multiple_choice_for, question_messages, response_messages
from .run_files import append_run_files, make_example_id, pipeline_report, write_run_files
from .sources import resolve_image, sample_records
from .structure import check_structure

def _with_image(messages: list[dict], image_url: str | None) -> list[dict]:
    if not image_url:
        return messages
    out = [dict(m) for m in messages]
    user = out[-1]
    user["content"] = [{"type": "image_url", "image_url": {"url": image_url}}, {"type": "text", "text": user["content"]}]
    return out


@register
class GenerationHandler(JobKindHandler):
    """Per source item: question → response → structure check → judge → one GeneratedExample row."""

    kind = JobKind.GENERATION
    queue = "generation"
    def clean_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return clean_params(params)

    def item_keys(self, job: Job):
        if job.params.get("source_ids") is not None:
            return list(job.params["source_ids"])
        ids = list(SourceItem.objects.filter(collection=job.params["collection"]).order_by("external_id")
                   .values_list("external_id", flat=True))
        return sample_records(ids, job.params.get("sample"), seed=job.params.get("seed", 42))

    def prepare(self, job: Job, key: str) -> dict:
        from ..llm.client import image_data_url

        source = SourceItem.objects.filter(collection=job.params["collection"], external_id=key).first()
        if source is None:
            raise ItemFailed("source_missing", f"来源 {key} 不存在")
        existing = GeneratedExample.objects.filter(job=job, source_item=source).first()
        if existing is not None and not _judge_failed(existing):
            # Stored before an interruption: do not pay for the model calls again.
            return {"source_id": source.pk, "done": True}
        is_multiple_choice = is_multiple_choice_for(
            source.external_id, ratio=job.params["multiple_choice_ratio"], seed=job.params.get("seed", 42))
        # An answer generated before, whose judging failed (or a re-judge run): judge it again, do
        # not generate it again.
        reuse = existing
        if reuse is None and job.parent_id:
            reuse = GeneratedExample.objects.filter(job_id=job.parent_id, source_item=source).first()
            if reuse is not None and not (job.params.get("rejudge") or _judge_failed(reuse)):
                reuse = None
        if reuse is not None and reuse.response:
            return {"source_id": source.pk, "done": False, "judge_only": True, "question": reuse.question,
                    "response": reuse.response, "wiki_title": source.wiki_title, "facts": list(source.facts),
                    "is_multiple_choice": reuse.is_multiple_choice}
        image_url = None
        if source.image:
            # A question about an image the model cannot see would be worthless training data.
            from core.images import inspect_image

            image_path = resolve_image(source.image)
            if image_path is None:
                raise ItemFailed("image_missing", f"图片不存在或不在 MEDIA_ROOT 内：{source.image}")
            try:
                inspect_image(image_path)
            except ApplicationError as exc:
                raise ItemFailed("image_invalid", exc.message) from None
            image_url = image_data_url(image_path)
        return {
            "source_id": source.pk,
            "done": False,
            "wiki_title": source.wiki_title,
            "facts": list(source.facts),
            "is_multiple_choice": is_multiple_choice,
            "image_url": image_url,
        }

    async def call(self, llm, payload: dict, params: dict[str, Any]) -> dict | None:
        from ..llm.errors import LLMError

        if payload["done"]:
            return None
        temperature = params.get("temperature", DEFAULT_PARAMS["temperature"])
        vision_model = params.get("model") or settings.LLM_VISION_MODEL
        threshold = params.get("pass_threshold", DEFAULT_PARAMS["pass_threshold"])
        sampling = {"temperature": temperature, "top_p": params.get("top_p"), "max_tokens": params.get("max_tokens")}
        if payload.get("judge_only"):
            question, response = payload["question"], payload["response"]
        else:
            try:
                question = (await llm.chat(_with_image(question_messages(payload, params), payload["image_url"]),
                                           model=vision_model, **sampling)).text.strip()
                response = (await llm.chat(_with_image(response_messages(payload, question, params),
                                                       payload["image_url"]),
                                           model=vision_model, **sampling)).text.strip()
            except LLMError as exc:
                raise ItemFailed(exc.kind, f"生成失败: {exc.message}") from None
        output = {"question": question, "response": response, "judge_raw": "", "structure_problems": check_structure(response)}
        if output["structure_problems"]:
            return output  # a broken structure fails without a judge call
        messages = judge_module.build_judge_messages(
            wiki_title=payload["wiki_title"], facts=payload["facts"], question=question, response=response,
            threshold=threshold,
        )
        try:
            output["judge_raw"] = (await llm.chat(messages, model=params.get("judge_model") or settings.LLM_JUDGE_MODEL,
                                                  **judge_module.judge_request_params(params))).text
        except LLMError as exc:
            # Only the judge failed: the generated answer is kept (store) and judged again later.
            output["judge_error"] = {"kind": exc.kind, "message": f"评判失败: {exc.message}"}
        return output

    def store(self, job: Job, key: str, payload: dict, output: dict | None) -> dict:
        source = SourceItem.objects.get(pk=payload["source_id"])
        if output is None:
            example = GeneratedExample.objects.get(job=job, source_item=source)
            return _item_result(example)
        threshold = job.params.get("pass_threshold", DEFAULT_PARAMS["pass_threshold"])
        fields = {"question": output["question"], "response": output["response"], "judge_raw": output["judge_raw"],
                  "is_multiple_choice": payload["is_multiple_choice"]}
        problems = output["structure_problems"]
        judge_error = output.get("judge_error")
        if judge_error:
            reasons = [judge_module.REASON_JUDGE_FAILED]
            fields.update(structure_ok=True, passed=False, overall_score=None, failure_reasons=reasons,
                          validation_result={"overall_score": None, "pass": False, "issues": reasons,
                                             "stage": "judge_error", "error": judge_error["message"]})
        elif problems:
            fields.update(structure_ok=False, passed=False, overall_score=None, failure_reasons=problems,
                          validation_result={"overall_score": None, "pass": False, "issues": problems,
                                             "stage": "structure"})
        else:
            try:
                verdict = judge_module.parse_verdict(output["judge_raw"], threshold=threshold)
            except judge_module.VerdictUnparseable as exc:
                reasons = [judge_module.REASON_UNPARSEABLE]
                fields.update(structure_ok=True, passed=False, overall_score=None, failure_reasons=reasons,
                              validation_result={"overall_score": None, "pass": False, "issues": reasons,
                                                 "stage": "judge", "error": str(exc)})
            else:
                fields.update(structure_ok=True, passed=verdict.passed, overall_score=verdict.overall_score,
                              failure_reasons=judge_module.failure_reasons_for(verdict),
                              validation_result={**verdict.as_validation_result(), "stage": "judge"})
        now = timezone.now()
        example, created = GeneratedExample.objects.get_or_create(
            job=job, source_item=source,
            defaults={**fields, "example_id": make_example_id(source, multiple_choice=payload["is_multiple_choice"],
                                                              moment=now)},
        )
        if not created:  # a redelivered item: keep one row, with the latest answer
            for name, value in fields.items():
                setattr(example, name, value)
            example.save(update_fields=[*fields, "updated_at"])
        if judge_error:
            raise ItemFailed(judge_error["kind"], judge_error["message"])  # the row above is kept
        return _item_result(example)

    def checkpoint(self, job: Job, state: dict) -> None:
        """The engine's mid-run hook: grow the team's files while the run goes on."""
        if job.params.get("output_dir"):
            append_run_files(job, job.params["output_dir"], state)

    def finalize(self, job: Job) -> dict[str, Any]:
        if job.params.get("output_dir"):
            return write_run_files(job, job.params["output_dir"])
        return pipeline_report(job)


def _judge_failed(example: GeneratedExample) -> bool:
    """Whether the example's answer was generated but its judge call failed."""
    return (example.validation_result or {}).get("stage") == "judge_error"


def _item_result(example: GeneratedExample) -> dict:
    return {"example_id": example.example_id, "passed": example.passed, "overall_score": example.overall_score,
            "failure_reasons": list(example.failure_reasons)}
