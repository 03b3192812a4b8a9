"""DPO job parameters: the reject strategies and decoding modes, their defaults, and `clean_params`
(shared by the job, the preview, the forms and the command)."""
from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from core.errors import ApplicationError

from ..llm.endpoints import endpoint_check
from .sources import prompt_source

STRATEGIES = {
    "model": "模型生成（OpenAI 兼容接口）",
    "truncate": "截断 chosen",
    "drop_list_items": "删去部分列表项",
    "drop_reasoning": "去掉 <think> 推理部分",
    "near_miss": "换成相似 prompt 的回答（near-miss）",
}
SAMPLING_MODES = {
    "greedy": "greedy（temperature=0）",
    "sampling": "采样（temperature / top_p）",
    # The seed's remedy "使用 beam search": the model's most likely answer. OpenAI-compatible chat
    # APIs have no beam search; vLLM offers it as an extension (`use_beam_search`), other servers
    # refuse or ignore it. best-of-n works wherever the server returns log-probs.
    "best_of": "best-of-n（采样 n 个，保留平均 logprob 最高的一个）",
    "beam": "beam search（vLLM 扩展 use_beam_search，宽度 n，保留最优的一个）",
}
SELECTING_MODES = ("best_of", "beam")

# The seed's SFT model was trained on "prompt[EOS]"; the default template says so explicitly.
DEFAULT_TEMPLATE = "{prompt}[EOS]"
DEFAULT_MODEL = "sft-small"
MAX_CANDIDATES = 8
PREVIEW_DEFAULT = 3
# Truncate keeps this share of the chosen answer: half, as in the seed's augmentation example.
TRUNCATE_KEEP = 0.5


# --------------------------------------------------------------------------- params
def _as_float(value: Any, name: str, low: float, high: float) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ApplicationError(f"{name} 必须是数字") from None
    if not low <= number <= high:
        raise ApplicationError(f"{name} 必须在 {low} 到 {high} 之间")
    return number


def _as_int(value: Any, name: str, low: int, high: int) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ApplicationError(f"{name} 必须是整数") from None
    if not low <= number <= high:
        raise ApplicationError(f"{name} 必须在 {low} 到 {high} 之间")
    return number


def clean_params(params: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise DPO job parameters (shared by the job, the preview and the forms).

    {"source": {"name", "job_id"?, "model_name"?, "dataset"?, "path"?},
     "strategy": {"name", "base_url"?, "model"?, "template"?, "system"?, "mode"?, "temperature"?,
                  "top_p"?, "n"?, "max_tokens"?, "keep"?},
     "limit": int | None}
    """
    source = dict(params.get("source") or {})
    strategy = dict(params.get("strategy") or {})
    provider = prompt_source(source["name"]) if isinstance(source.get("name"), str) else None
    if provider is None:
        raise ApplicationError("请选择数据来源")
    clean_source: dict[str, Any] = {"name": source["name"], **provider.clean(source)}
    if source.get("job_id") not in (None, ""):
        clean_source["job_id"] = _as_int(source["job_id"], "来源任务", 1, 2**63)
    if source.get("model_name"):
        clean_source["model_name"] = str(source["model_name"]).strip()[:200]

    name = strategy.get("name")
    if name not in STRATEGIES:
        raise ApplicationError("请选择 reject 生成策略")
    clean_strategy: dict[str, Any] = {"name": name}
    if name == "model":
        template = str(strategy.get("template") or DEFAULT_TEMPLATE)
        if "{prompt}" not in template:
            raise ApplicationError("prompt 模板必须包含 {prompt}")
        mode = strategy.get("mode") or "greedy"
        if mode not in SAMPLING_MODES:
            raise ApplicationError("未知的解码方式")
        base_url = str(strategy.get("base_url") or settings.OPENAI_BASE_URL).strip()
        if not re.match(r"^https?://[^\s/]+", base_url):
            raise ApplicationError("endpoint 必须是 http(s):// 开头的地址")
        clean_strategy.update(
            base_url=endpoint_check(base_url),
            model=str(strategy.get("model") or DEFAULT_MODEL).strip()[:200],
            template=template,
            system=str(strategy.get("system") or ""),
            mode=mode,
            n=_as_int(strategy.get("n"), "候选数 n", 1, MAX_CANDIDATES) or 1,
            max_tokens=_as_int(strategy.get("max_tokens"), "max_tokens", 1, 32768),
        )
        if mode in SELECTING_MODES and clean_strategy["n"] < 2:
            raise ApplicationError("best-of-n / beam search 需要候选数 n ≥ 2")
        if mode in ("greedy", "beam"):
            clean_strategy.update(temperature=0.0, top_p=None)
        else:
            clean_strategy.update(
                temperature=_as_float(strategy.get("temperature"), "temperature", 0.0, 2.0) if strategy.get("temperature") not in (None, "") else 0.8,
                top_p=_as_float(strategy.get("top_p"), "top_p", 0.0, 1.0),
            )
        if mode == "greedy" and clean_strategy["n"] > 1:
            raise ApplicationError("greedy 解码每次结果相同，多个候选请选择采样")
    if name == "truncate":
        clean_strategy["keep"] = _as_float(strategy.get("keep"), "保留比例", 0.05, 0.95) or TRUNCATE_KEEP
    return {"source": clean_source, "strategy": clean_strategy, "limit": _as_int(params.get("limit"), "数量上限", 1, 10**7)}
