"""Generation job parameters: their defaults and `clean_params` (shared by the job, the forms and
the command)."""
from __future__ import annotations

from typing import Any

from core.errors import ApplicationError

from ..models import SourceItem
from . import judge as judge_module

DEFAULT_PARAMS = {
    "multiple_choice_ratio": 0.3,
    "pass_threshold": judge_module.DEFAULT_PASS_THRESHOLD,
    "temperature": 0.7,
    "seed": 42,
}


def _float_param(params: dict, name: str, low: float, high: float) -> float:
    try:
        value = float(params.get(name, DEFAULT_PARAMS[name]))
    except (TypeError, ValueError):
        raise ApplicationError(f"{name} 必须是数字") from None
    if not low <= value <= high:
        raise ApplicationError(f"{name} 必须在 {low:g} 到 {high:g} 之间")
    return value


def clean_params(params: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise a generation run's parameters; ApplicationError if bad."""
    collection = str(params.get("collection") or "").strip()
    if not collection:
        raise ApplicationError("请选择来源集合")
    if not SourceItem.objects.filter(collection=collection).exists():
        raise ApplicationError(f"来源集合 {collection} 中没有数据，请先导入")
    cleaned = {
        "collection": collection,
        "multiple_choice_ratio": _float_param(params, "multiple_choice_ratio", 0, 1),
        "pass_threshold": _float_param(params, "pass_threshold", 0, 10),
        "temperature": _float_param(params, "temperature", 0, 2),
    }
    try:
        cleaned["seed"] = int(params.get("seed", DEFAULT_PARAMS["seed"]))
        sample = params.get("sample")
        cleaned["sample"] = int(sample) if sample not in (None, "") else None
    except (TypeError, ValueError):
        raise ApplicationError("seed 和 sample 必须是整数") from None
    if cleaned["sample"] is not None and cleaned["sample"] <= 0:
        raise ApplicationError("样本数必须大于 0")
    for name in ("model", "judge_model"):
        if params.get(name):
            cleaned[name] = str(params[name])[:200]
    for name in judge_module.JUDGE_PARAMS:
        try:
            value = judge_module.clean_judge_param(name, params.get(f"judge_{name}"))
        except ValueError as exc:
            raise ApplicationError(str(exc)) from None
        if value is not None:
            cleaned[f"judge_{name}"] = value
    if params.get("rejudge"):
        cleaned["rejudge"] = True
    if params.get("source_ids") is not None:
        cleaned["source_ids"] = [str(x) for x in params["source_ids"]]
    if params.get("output_dir"):
        cleaned["output_dir"] = str(params["output_dir"])
    if params.get("rerun_changes"):
        cleaned["rerun_changes"] = params["rerun_changes"]
    # Provider overrides (concurrency, requests_per_minute, …) are the engine's to validate.
    for name in ("top_p", "max_tokens", "concurrency", "requests_per_minute", "timeout", "max_retries"):
        if params.get(name) not in (None, ""):
            cleaned[name] = params[name]
    return cleaned
