"""Job kind "info_extraction": a structured description of each sample's image (the seed's
`qwen72B_enhance.py` step), stored in `Sample.image_info` and shown beside the reasoning.

Parameters: `dataset`, optionally `categories` (names) and `overwrite` (default False: samples that
already have image_info are skipped), plus the engine overrides. The answer must be a JSON object
(a ```json fence around it is accepted); anything else fails the item as "unparseable".

`info_extra_import` reads the team's existing `info_extra` JSON files instead of re-running.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.jsonfiles import read_record_file
from pipelines.jobs.kinds import ItemFailed, JobKindHandler, register
from pipelines.models import Job, JobKind, PromptTemplate
from review.models import Dataset, Sample
from review.suspicion import suspicions_refresh

from .classification import (
    PromptCache, image_message, pinned_template, resolve_categories, resolve_dataset, sample_job_params,
)
from .forms import InfoExtractionJobForm

INFO_FIELDS = ("visible_text", "objects", "screen_elements", "scene")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def parse_info(text: str) -> dict[str, Any] | None:
    """The JSON object in a model answer (bare, fenced, or the outermost {...}), else None."""
    if not text:
        return None
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate.strip())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


@register
class InfoExtractionHandler(JobKindHandler):
    kind = JobKind.INFO_EXTRACTION
    queue = "extraction"
    form_class = InfoExtractionJobForm
    repinned_on_retry = ("prompt_template_id", "prompt_version")

    def __init__(self) -> None:
        self._cache = PromptCache()

    def clean_params(self, params: dict[str, Any]) -> dict[str, Any]:
        dataset = resolve_dataset(params.get("dataset") or params.get("dataset_id"))
        categories = resolve_categories(dataset, list(params.get("categories") or []))
        template = pinned_template(params, PromptTemplate.Kind.INFO_EXTRACTION, missing="信息提取提示词版本不存在")
        return sample_job_params(params, dataset=dataset, categories=categories, template=template,
                                 overwrite=bool(params.get("overwrite")))

    def item_keys(self, job: Job) -> Iterable[str]:
        qs = Sample.objects.filter(dataset_id=job.params["dataset_id"])
        if job.params.get("category_ids"):
            qs = qs.filter(label_id__in=job.params["category_ids"])
        if not job.params.get("overwrite"):
            qs = qs.filter(image_info__isnull=True)
        return (str(pk) for pk in qs.order_by("label__position", "label_id", "external_id").values_list("pk", flat=True))

    def prepare(self, job: Job, key: str) -> dict[str, Any]:
        sample = Sample.objects.filter(pk=key, dataset_id=job.params["dataset_id"]).values("id", "image").first()
        if sample is None:
            raise ItemFailed("missing", "样本已不存在")
        prompt = self._cache.get(job, "info",
                                 lambda: PromptTemplate.objects.get(pk=job.params["prompt_template_id"]).text)
        return {"sample_id": sample["id"], "messages": image_message(prompt, sample["image"])}

    async def call(self, llm, payload: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        result = await llm.chat(payload["messages"], model=params.get("model"), temperature=params.get("temperature"),
                                max_tokens=params.get("max_tokens"))
        return {"text": result.text, "model": result.model}

    def store(self, job: Job, key: str, payload: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
        info = parse_info(output["text"])
        if info is None:
            raise ItemFailed("unparseable", f"回答不是 JSON：{output['text'][:80]}")
        info["_source"] = {"job_id": job.pk, "model": output.get("model") or job.params.get("model"),
                           "prompt_version": job.params.get("prompt_version")}
        Sample.objects.filter(pk=payload["sample_id"]).update(image_info=info, updated_at=timezone.now())
        suspicions_refresh(sample_ids=[payload["sample_id"]])  # the image information is evidence
        return {"fields": sorted(k for k in info if not k.startswith("_"))}

    def finalize(self, job: Job) -> dict[str, Any]:
        return {"dataset": job.params.get("dataset"), "prompt_version": job.params.get("prompt_version"),
                "model": job.params.get("model")}


# --------------------------------------------------------------------------- importing info_extra files
_ID_KEYS = ("external_id", "id", "sample_id", "image_id", "uuid")
_IMAGE_KEYS = ("image", "image_path", "img", "path", "images")
_INFO_KEYS = ("image_info", "info", "info_extra", "response", "output", "result", "description", "answer")


@dataclass
class InfoImportResult:
    files: int = 0
    updated: int = 0
    unchanged: int = 0
    unknown_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _record_id(record: dict[str, Any]) -> str | None:
    for key in _ID_KEYS:
        if record.get(key) not in (None, ""):
            return str(record[key]).strip()
    for key in _IMAGE_KEYS:
        value = record.get(key)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str) and value.strip():
            return PurePath(value.replace("\\", "/")).stem
    return None


def _record_info(record: dict[str, Any]) -> Any:
    for key in _INFO_KEYS:
        if key in record:
            value = record[key]
            if isinstance(value, str):
                return parse_info(value) or {"text": value}
            return value
    rest = {k: v for k, v in record.items() if k not in _ID_KEYS and k not in _IMAGE_KEYS}
    return rest or None


def _mapping_records(data: dict[str, Any], where: str) -> Iterable[tuple[str, Any]]:
    """(where, record) pairs from an {id: info} mapping (a file that is one object without an id)."""
    for key, value in data.items():
        if isinstance(value, dict) and _record_id(value):
            yield f"{where} 键 {key}", value
        else:
            yield f"{where} 键 {key}", {"id": key, "info": value}


def _file_records(path: Path, result: InfoImportResult, encoding: str | None) -> list[tuple[str, Any]]:
    """The records of one file in any shape `core.jsonfiles` reads (the team's `json.dumps(record)
    + ",\n"` lines included); unreadable records go to `result.errors` with file and line."""
    read = read_record_file(path, path.name, encoding=encoding)
    if read.error:
        result.errors.append(f"{path.name}: {read.error}")
        return []
    records: list[tuple[str, Any]] = []
    for raw in read.records:
        if not raw.ok:
            result.errors.append(f"{raw.location}: {raw.error}")
        elif read.shape == "object" and isinstance(raw.value, dict) and not _record_id(raw.value):
            records.extend(_mapping_records(raw.value, raw.location))
        else:
            records.append((raw.location, raw.value))
    return records


@transaction.atomic
def info_extra_import(*, dataset: Dataset, paths: Iterable[Path], encoding: str | None = None) -> InfoImportResult:
    """Store the image descriptions in the team's info_extra files on the matching samples.

    Samples are matched by external id (or the image file name's stem). The team's records
    (`{"id", "image", "output": <label>, "picture2text": <description>}`) fill the sample's
    description; other records' info goes to `image_info`. An empty description keeps what is
    stored. Bad files or records are reported with the file and line; the rest is imported.
    """
    result = InfoImportResult()
    ids = dict(Sample.objects.filter(dataset=dataset).values_list("external_id", "pk"))
    limit = settings.IMPORT_MAX_TEXT_CHARS
    for path in paths:
        path = Path(path)
        result.files += 1
        for where, record in _file_records(path, result, encoding):
            if not isinstance(record, dict):
                result.errors.append(f"{where}: 不是对象")
                continue
            external_id = _record_id(record)
            if "picture2text" in record:  # the team's file: "output" there is the label
                description = record["picture2text"]
                if not external_id or not isinstance(description, str):
                    result.errors.append(f"{where}: 缺少样本 id 或 picture2text 不是文本")
                    continue
                if len(description) > limit:
                    result.errors.append(f"{where}: 图片描述过长（{len(description)} 字符，上限 {limit}，设置 IMPORT_MAX_TEXT_CHARS）")
                    continue
                sample_id = ids.get(external_id)
                if sample_id is None:
                    result.unknown_ids.append(external_id)
                    continue
                changed = bool(description) and Sample.objects.filter(pk=sample_id).exclude(
                    description=description).update(description=description, updated_at=timezone.now())
                result.updated += int(changed)
                result.unchanged += int(not changed)
                continue
            info = _record_info(record)
            if not external_id or info in (None, "", {}):
                result.errors.append(f"{where}: 缺少样本 id 或信息")
                continue
            sample_id = ids.get(external_id)
            if sample_id is None:
                result.unknown_ids.append(external_id)
                continue
            if isinstance(info, dict):
                info = {**info, "_source": {"file": path.name}}
            else:
                info = {"text": info, "_source": {"file": path.name}}
            changed = Sample.objects.filter(pk=sample_id).exclude(image_info=info).update(
                image_info=info, updated_at=timezone.now()
            )
            if changed:
                result.updated += 1
            else:
                result.unchanged += 1
    # Descriptions and image information are evidence of the label-error suspicion.
    suspicions_refresh(samples=Sample.objects.filter(dataset=dataset))
    return result
