"""Reading one record: what its keys mean in the file it is in, checked against the database's column
sizes and IMPORT_MAX_TEXT_CHARS, and what the import keeps of it (JSON, staged until the sample is
assembled)."""
from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from core.jsonfiles import RawRecord
from review.models import Sample

from .planning import INFO, MANIFEST, MODE, TRAIN, SourceFile

ID_KEYS = ("id", "sample_id", "external_id")
IMAGE_KEYS = ("image", "image_path", "img", "images")
LABEL_KEYS = ("label", "class", "category")
OUTPUT_KEYS = ("output", "response", "answer")
DESCRIPTION_KEYS = ("picture2text", "description")
# Database column sizes (review.models): longer values are refused on their line, not truncated.
MAX_ID_CHARS = Sample._meta.get_field("external_id").max_length
MAX_NAME_CHARS = 200
MAX_IMAGE_PATH_CHARS = 1000


def _first(record: dict, keys: tuple[str, ...]) -> tuple[str, Any]:
    for key in keys:
        if key in record and record[key] not in (None, "", []):
            return key, record[key]
    return "", None


class Rejected(Exception):
    """A record that cannot be imported; the message says why (prefixed with its id when known)."""


def check_record(raw: RawRecord, file: SourceFile, notes: list[str]) -> tuple[str, dict]:
    """(external id, what the import keeps of the record) for a record of `file`; Rejected if it
    cannot be imported. What is kept is JSON: it is staged on disk until the sample is assembled."""
    kind, record = file.kind, raw.value
    if not isinstance(record, dict):
        raise Rejected("记录应为 JSON 对象")
    _, external_id = _first(record, ID_KEYS)
    if external_id is None or isinstance(external_id, (dict, list, bool)) or not str(external_id).strip():
        raise Rejected("缺少 id")
    external_id = str(external_id).strip()
    if len(external_id) > MAX_ID_CHARS:
        raise Rejected(f"id 过长（{len(external_id)} 字符，上限 {MAX_ID_CHARS}）")
    who = f"{external_id}："

    # The label: "output" is the label in train.json and the info files, the reasoning elsewhere.
    label_keys = LABEL_KEYS + (("output",) if kind in (INFO, TRAIN) else ())
    _, written_label = _first(record, label_keys)
    label = file.class_name if written_label is None else written_label
    if label is None or (kind == MANIFEST and isinstance(label, str) and not label.strip()):
        raise Rejected(f"{who}缺少 label")
    if not isinstance(label, str):
        raise Rejected(f"{who}标签应为文本")
    label = label.strip()
    if len(label) > MAX_NAME_CHARS:
        raise Rejected(f"{who}标签过长（{len(label)} 字符，上限 {MAX_NAME_CHARS}）")

    outputs, output_key = _outputs(record, kind=kind, mode=file.mode, who=who)
    limit = settings.IMPORT_MAX_TEXT_CHARS
    for m, text in outputs.items():
        if len(text) > limit:
            raise Rejected(f"{who}模式{m}的输出过长（{len(text)} 字符，上限 {limit}，设置 IMPORT_MAX_TEXT_CHARS）")

    image_key, image = _first(record, IMAGE_KEYS)
    if isinstance(image, list):
        if not all(isinstance(i, str) for i in image):
            raise Rejected(f"{who}{image_key} 应为路径或路径列表")
        if len(image) > 1:
            notes.append(f"{who}有 {len(image)} 张图片，页面上显示第一张（导出时原样写回）")
        image = image[0] if image else None
    if image is not None and not isinstance(image, str):
        raise Rejected(f"{who}{image_key} 应为路径或路径列表")
    if image is not None and len(image) > MAX_IMAGE_PATH_CHARS:
        raise Rejected(f"{who}图片路径过长（{len(image)} 字符）")

    description = None
    _, text = _first(record, DESCRIPTION_KEYS)
    if text is not None:
        if not isinstance(text, str):
            raise Rejected(f"{who}picture2text 应为文本")
        if len(text) > limit:
            raise Rejected(f"{who}图片描述过长（{len(text)} 字符，上限 {limit}，设置 IMPORT_MAX_TEXT_CHARS）")
        description = text

    model = record.get("model") or record.get("model_name") or ""
    if not isinstance(model, str) or len(model) > MAX_NAME_CHARS:
        raise Rejected(f"{who}model 应为不超过 {MAX_NAME_CHARS} 字符的文本")

    kept: dict[str, Any] = {"loc": raw.location, "label": label, "image": image or ""}
    if kind == TRAIN:
        return external_id, kept
    # A label written in the record names itself; otherwise the class folder or file does.
    kept["where"] = raw.location if written_label is not None else file.origin
    if outputs:
        kept["outputs"] = outputs
    if model:
        kept["model"] = model
    if record.get("image_info") is not None:
        kept["image_info"] = record["image_info"]
    if description is not None:
        kept["description"] = description
    if kind == MODE and output_key:
        as_written = dict(record)
        as_written[output_key] = None  # the output itself lives in the Reasoning row
        kept["prov"] = {"position": raw.position, "output_key": output_key,
                        "record": json.dumps(as_written, ensure_ascii=False)}
    return external_id, kept


def _outputs(record: dict, *, kind: str, mode: int | None, who: str) -> tuple[dict[str, str], str]:
    """(mode → output, the key it was under) of a record; Rejected when they are unusable."""
    outputs: dict[str, Any] = {}
    key = ""
    if kind == MODE:
        _, output = _first(record, OUTPUT_KEYS)
        if output is not None:
            outputs[str(mode)] = output
        key = next((k for k in OUTPUT_KEYS if k in record), "output")
    elif kind == MANIFEST:
        given = record.get("outputs") or {}
        if not isinstance(given, dict):
            raise Rejected(f"{who}outputs 应为 {{\"1\": …, \"2\": …, \"3\": …}}")
        for k, value in given.items():
            if str(k) not in {"1", "2", "3"}:
                raise Rejected(f"{who}未知的模式 {k}")
            if value is not None:
                outputs[str(k)] = value
        for m in (1, 2, 3):
            if record.get(f"mode{m}") is not None:
                outputs[str(m)] = record[f"mode{m}"]
    if any(not isinstance(v, str) for v in outputs.values()):
        raise Rejected(f"{who}输出必须是文本")
    return outputs, key
