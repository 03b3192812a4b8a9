"""The "dpo" job kind: build preference pairs (prompt, chosen, rejected) and check every one.

Seed 002: the team asked a weak SFT model for worse answers and got the same off-topic text for every
prompt, because the model (or the way the prompt was sent) was wrong — and found out only by printing
three samples by hand. Here that is the workflow:

1. Inputs: prompts with chosen answers from any dataset in the product (`SOURCES`) or a JSONL file.
2. A reject strategy per job (`STRATEGIES`): a model (any OpenAI-compatible endpoint; greedy,
   sampling with temperature/top-p, or n candidates → n rows), or a model-free degradation of the
   chosen answer (truncate, drop list items, drop the `<think>` reasoning, a near-miss answer from a
   similar prompt). The model is sent the prompt through an explicit template (`{prompt}[EOS]` if
   that is how it was trained), stored with the job and shown on every page.
3. `preview(params, n)` runs the same code on the first n prompts without writing anything — what
   the full job will produce for them — with endpoint, model and the exact request.
4. Every pair is checked (`pipelines.pair_checks`); the job report ranks the issues and says plainly
   when most rejects are off-topic, with the seed's likely causes.
"""
from __future__ import annotations

import asyncio
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from core.errors import ApplicationError, conflict_error

from . import pair_checks
from .datasets import formats
from .llm.endpoints import endpoint_check
from .jobkinds import ItemFailed, JobKindHandler, register
from .models import FeedbackSample, GeneratedExample, Job, JobKind, LogRecord, PreferencePair, ReviewDecision

# --------------------------------------------------------------------------- choices
SOURCES = {
    "feedback": "用户反馈（已接受 / 修改后接受）",
    "classification": "分类推理（模式3 纠正后的训练集）",
    "generation": "生成样本（评判通过或人工挽回）",
    "logs": "调用日志提取的问答对",
    "file": "导入 JSONL 文件",
}
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


@dataclass(frozen=True)
class PromptRecord:
    """One input of a DPO job: a prompt and its chosen answer, with a key stable within the source."""

    key: str
    source: str
    prompt: str
    chosen: str
    system: str = ""
    images: tuple[str, ...] = ()


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


def import_path(relative: str) -> Path:
    """The imported file under MEDIA_ROOT; ApplicationError for anything outside it."""
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ApplicationError("导入文件不存在或不在允许的目录中")
    return path


def clean_params(params: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise DPO job parameters (shared by the job, the preview and the forms).

    {"source": {"name", "job_id"?, "model_name"?, "dataset"?, "path"?},
     "strategy": {"name", "base_url"?, "model"?, "template"?, "system"?, "mode"?, "temperature"?,
                  "top_p"?, "n"?, "max_tokens"?, "keep"?},
     "limit": int | None}
    """
    source = dict(params.get("source") or {})
    strategy = dict(params.get("strategy") or {})
    if source.get("name") not in SOURCES:
        raise ApplicationError("请选择数据来源")
    clean_source: dict[str, Any] = {"name": source["name"]}
    if source["name"] == "file":
        if not source.get("path"):
            raise ApplicationError("请上传 JSONL 文件")
        import_path(source["path"])
        clean_source["path"] = str(source["path"])
    if source["name"] == "classification":
        from review.models import Dataset

        if not Dataset.objects.filter(name=source.get("dataset") or "").exists():
            raise ApplicationError("请选择数据集")
        clean_source["dataset"] = source["dataset"]
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


# --------------------------------------------------------------------------- sources
# Database sources: a queryset (the filters) and a row → record mapping, so one item reads one row.
def _feedback_rows(source: dict):
    rows = FeedbackSample.objects.filter(decision__in=[ReviewDecision.ACCEPTED, ReviewDecision.EDITED])
    if source.get("job_id"):
        rows = rows.filter(job_id=source["job_id"])
    if source.get("model_name"):
        rows = rows.filter(model_name=source["model_name"])
    return rows


def _feedback_record(row: FeedbackSample) -> PromptRecord:
    prompt = f"{row.instruction}\n{row.input}" if row.input else row.instruction
    chosen = row.edited_output if row.decision == ReviewDecision.EDITED and row.edited_output else row.output
    return PromptRecord(f"feedback:{row.pk}", "feedback", prompt, chosen)


def _generation_rows(source: dict):
    # Passed by the judge and not rejected by a reviewer, or rescued by a reviewer.
    rows = GeneratedExample.objects.filter(
        Q(passed=True) & ~Q(decision=ReviewDecision.REJECTED)
        | Q(decision__in=[ReviewDecision.ACCEPTED, ReviewDecision.EDITED])
    ).select_related("source_item")
    if source.get("job_id"):
        rows = rows.filter(job_id=source["job_id"])
    return rows


def _generation_record(row: GeneratedExample) -> PromptRecord:
    chosen = row.edited_response if row.decision == ReviewDecision.EDITED and row.edited_response else row.response
    images = (row.source_item.image,) if row.source_item.image else ()
    prompt = f"<image>{row.question}" if images and "<image>" not in row.question else row.question
    return PromptRecord(f"generation:{row.pk}", "generation", prompt, chosen, images=images)


def _log_rows(source: dict):
    rows = LogRecord.objects.all()
    if source.get("job_id"):
        rows = rows.filter(job_id=source["job_id"])
    if source.get("model_name"):
        rows = rows.filter(model_name=source["model_name"])
    return rows


def _log_record(row: LogRecord) -> PromptRecord:
    return PromptRecord(f"logs:{row.pk}", "logs", row.prompt, row.response)


_DB_SOURCES = {
    "feedback": (_feedback_rows, _feedback_record),
    "generation": (_generation_rows, _generation_record),
    "logs": (_log_rows, _log_record),
}


def _classification_records(source: dict) -> Iterator[PromptRecord]:
    from review.exports import trainset_records
    from review.models import Dataset

    dataset = Dataset.objects.get(name=source["dataset"])
    for record in trainset_records(dataset=dataset):
        yield PromptRecord(
            f"classification:{record['id']}", "classification", record["prompt"], record["response"],
            system=record.get("system") or "", images=tuple(record.get("images") or ()),
        )


def _file_record(record: Any, line_no: int) -> PromptRecord:
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    if "prompt" in record:
        prompt = pair_checks._message_text(record["prompt"], role="user|human")
    elif "instruction" in record:
        prompt = str(record["instruction"] or "")
        if record.get("input"):
            prompt = f"{prompt}\n{record['input']}"
    else:
        raise ValueError("missing key 'prompt' (or 'instruction')")
    for name in ("chosen", "output", "response", "completion"):
        if name in record:
            chosen = pair_checks._message_text(record[name], role="assistant|gpt")
            break
    else:
        raise ValueError("missing key 'chosen' (or 'output', 'response', 'completion')")
    if not prompt.strip() or not chosen.strip():
        raise ValueError("empty prompt or chosen answer")
    record_id = record.get("id", line_no)
    return PromptRecord(f"file:{record_id}", "file", prompt, chosen, system=str(record.get("system") or ""))


@lru_cache(maxsize=4)
def _read_import(path: str, mtime: float) -> tuple[tuple[PromptRecord, ...], tuple[tuple[int, str], ...]]:
    records, errors, seen = [], [], set()
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if line_no == 1 else "utf-8").strip()
                if not text:
                    continue
                record = _file_record(json.loads(text), line_no)
            except UnicodeDecodeError:
                errors.append((line_no, "not UTF-8"))
                continue
            except json.JSONDecodeError as exc:
                errors.append((line_no, f"invalid JSON: {exc.msg}"))
                continue
            except ValueError as exc:
                errors.append((line_no, str(exc)))
                continue
            if record.key in seen:
                errors.append((line_no, f"duplicate id {record.key[5:]!r}"))
                continue
            seen.add(record.key)
            records.append(record)
    return tuple(records), tuple(errors)


def read_import(relative: str) -> tuple[tuple[PromptRecord, ...], tuple[tuple[int, str], ...]]:
    """Records of an imported JSONL file and its malformed lines as (line number, reason)."""
    path = import_path(relative)
    return _read_import(str(path), path.stat().st_mtime)


def iter_source_records(source: dict) -> Iterator[PromptRecord]:
    """The records of a source, in a stable order (the order items and previews use)."""
    name = source["name"]
    if name == "file":
        yield from read_import(source["path"])[0]
    elif name in _DB_SOURCES:
        rows, to_record = _DB_SOURCES[name]
        for row in rows(source).order_by("id").iterator(chunk_size=2000):
            yield to_record(row)
    elif name == "classification":
        yield from _classification_records(source)
    else:
        raise ApplicationError(f"未知数据来源 {name!r}")


def source_keys(params: dict) -> list[str]:
    """The keys of a job's prompts (its items), honouring the limit."""
    keys = []
    for record in iter_source_records(params["source"]):
        keys.append(record.key)
        if params.get("limit") and len(keys) >= params["limit"]:
            break
    return keys


def source_record(source: dict, key: str, *, cache_token: Any = None) -> PromptRecord:
    """The record of one key (one query for database sources); ItemFailed when it is gone.

    File and classification sources are indexed whole once per `cache_token` (the job id).
    """
    name, _, ident = key.partition(":")
    if name in _DB_SOURCES and name == source["name"] and ident.isdigit():
        rows, to_record = _DB_SOURCES[name]
        row = rows(source).filter(pk=int(ident)).first()
        if row is not None:
            return to_record(row)
    elif name == source["name"]:
        record = _record_index(json.dumps(source, sort_keys=True), cache_token).get(key)
        if record is not None:
            return record
    raise ItemFailed("missing_source", f"来源中找不到 {key}")


@lru_cache(maxsize=4)
def _record_index(source_json: str, cache_token: Any) -> dict[str, PromptRecord]:
    """Key → record for file and classification sources, built once per job (cache_token = job id)."""
    return {record.key: record for record in iter_source_records(json.loads(source_json))}


# --------------------------------------------------------------------------- model-free rejects
_BOUNDARY = re.compile(r"[。！？!?；;，,、\n ]")
_THINK_BLOCK = re.compile(r"\s*<think>.*?</think>\s*", re.DOTALL)
_LIST_LINE = re.compile(r"^\s*(?:[-*•·]|\d+[.、)）]|[（(]\d+[)）]|[一二三四五六七八九十]+、)\s*\S")
_INLINE_LIST = re.compile(r"[^、，,。；;！？!?\n：:]+(?:、[^、，,。；;！？!?\n：:]+)+")


def truncate_answer(chosen: str, keep: float = TRUNCATE_KEEP) -> str:
    """The first `keep` share of the answer, cut at a punctuation or space boundary when one is near."""
    text = chosen.strip()
    cut = max(1, math.ceil(len(text) * keep))
    if cut >= len(text):
        raise ItemFailed("not_applicable", "chosen 太短，无法截断")
    # Prefer ending just before a boundary in the last 30 % of the kept part.
    window = text[int(cut * 0.7) : cut]
    boundaries = [m.start() for m in _BOUNDARY.finditer(window)]
    if boundaries:
        cut = int(cut * 0.7) + boundaries[-1]
    result = text[:cut].rstrip()
    if not result:
        raise ItemFailed("not_applicable", "chosen 太短，无法截断")
    return result


def drop_list_items(chosen: str) -> str:
    """The answer with the second half of its list dropped (line items, else a 、-separated list)."""
    lines = chosen.split("\n")
    item_lines = [i for i, line in enumerate(lines) if _LIST_LINE.match(line)]
    if len(item_lines) >= 2:
        keep = math.ceil(len(item_lines) / 2)
        first_dropped = item_lines[keep]
        dropped = set()
        in_dropped_item = False
        for i in range(first_dropped, len(lines)):
            if i in item_lines:
                in_dropped_item = item_lines.index(i) >= keep
            elif not lines[i].strip():
                in_dropped_item = False
            if in_dropped_item:
                dropped.add(i)
        return "\n".join(line for i, line in enumerate(lines) if i not in dropped).strip()
    matches = list(_INLINE_LIST.finditer(chosen))
    if matches:
        match = max(matches, key=lambda m: m.group(0).count("、"))
        parts = match.group(0).split("、")
        kept = "、".join(parts[: math.ceil(len(parts) / 2)])
        return (chosen[: match.start()] + kept + chosen[match.end() :]).strip()
    raise ItemFailed("not_applicable", "chosen 中没有可删的列表项")


def drop_reasoning(chosen: str) -> str:
    """The answer without its `<think>…</think>` reasoning."""
    if "<think>" not in chosen or "</think>" not in chosen:
        raise ItemFailed("not_applicable", "chosen 中没有 <think> 推理部分")
    answer = _THINK_BLOCK.sub("\n", chosen).strip()
    if not answer:
        raise ItemFailed("not_applicable", "去掉推理后没有答案")
    return answer


class NearMissIndex:
    """Finds, for a prompt, the most similar *other* prompt of the source (IDF-weighted shared n-grams)."""

    def __init__(self, records: list[PromptRecord]):
        self.records = records
        self.grams = [pair_checks.content_grams(r.prompt, keep_stop_words=True) for r in records]
        self.postings: dict[str, list[int]] = {}
        for i, grams in enumerate(self.grams):
            for gram in grams:
                self.postings.setdefault(gram, []).append(i)
        total = max(len(records), 1)
        self.idf = {g: math.log(1 + total / len(ids)) for g, ids in self.postings.items()}
        self.position = {r.key: i for i, r in enumerate(records)}

    def near_miss(self, record: PromptRecord) -> PromptRecord:
        """The record whose prompt is most like `record`'s, with a different answer; ItemFailed if none."""
        own = self.position.get(record.key)
        grams = self.grams[own] if own is not None else pair_checks.content_grams(record.prompt, keep_stop_words=True)
        scores: Counter = Counter()
        for gram in grams:
            ids = self.postings.get(gram, ())
            # A gram in most prompts says nothing about similarity; skip it (and keep this linear).
            if len(ids) > max(50, len(self.records) // 5):
                continue
            for i in ids:
                scores[i] += self.idf[gram]
        own_prompt, own_chosen = pair_checks.normalize(record.prompt), pair_checks.normalize(record.chosen)
        for i, _score in sorted(scores.items(), key=lambda item: (-item[1], item[0])):
            other = self.records[i]
            if i == own or pair_checks.normalize(other.prompt) == own_prompt:
                continue
            if pair_checks.normalize(other.chosen) == own_chosen:
                continue
            return other
        raise ItemFailed("not_applicable", "来源中没有相似的其他 prompt")


@lru_cache(maxsize=2)
def _near_miss_index(source_json: str, cache_token: Any) -> NearMissIndex:
    return NearMissIndex(list(iter_source_records(json.loads(source_json))))


def near_miss_index(source: dict, cache_token: Any = None) -> NearMissIndex:
    """The near-miss index of a whole source (cached per job: `cache_token` = job id)."""
    if cache_token is None:
        return NearMissIndex(list(iter_source_records(source)))
    return _near_miss_index(json.dumps(source, sort_keys=True), cache_token)


# --------------------------------------------------------------------------- model rejects
def render_prompt(template: str, record: PromptRecord) -> str:
    """The prompt as the model was trained on it: placeholders replaced literally (other braces kept)."""
    return template.replace("{prompt}", record.prompt).replace("{system}", record.system)


def model_messages(strategy: dict, record: PromptRecord) -> list[dict[str, Any]]:
    """The exact chat messages sent for one prompt (shown in the preview)."""
    text = render_prompt(strategy["template"], record)
    messages: list[dict[str, Any]] = []
    if strategy.get("system"):
        messages.append({"role": "system", "content": strategy["system"]})
    if record.images:
        from .llm.client import image_data_url

        root = Path(settings.MEDIA_ROOT).resolve()
        parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
        for image in record.images:
            path = (root / image).resolve()
            if path.is_relative_to(root) and path.is_file():
                parts.append({"type": "image_url", "image_url": {"url": image_data_url(path)}})
        messages.append({"role": "user", "content": parts})
    else:
        messages.append({"role": "user", "content": text})
    return messages


def display_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Messages for pages: image data URLs shortened to a marker."""
    shown = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = "".join(p["text"] if p.get("type") == "text" else "[图片]" for p in content)
        shown.append({"role": message["role"], "content": content})
    return shown


def llm_for(strategy: dict, llm=None):
    """The client for the strategy's endpoint and whether the caller must close it.

    Inside a job: the job's own client, or its one client for another endpoint (reused for every
    item, so the job's concurrency and adaptive rate hold there too). The configured API key is
    only ever sent to the configured endpoint; any other endpoint (a vLLM server, a local
    checkpoint) gets no key, so a typed URL can never collect it.
    """
    from .llm.client import LLMClient

    if llm is not None and llm.same_endpoint(strategy["base_url"]):
        return llm, False
    endpoint_check(strategy["base_url"])  # again here: the list may have changed since the job was made
    own = strategy["base_url"] == settings.OPENAI_BASE_URL.rstrip("/")
    if llm is not None:
        return llm.for_endpoint(strategy["base_url"], api_key=None if own else "sk-none", model=strategy["model"]), False
    client = LLMClient(base_url=strategy["base_url"], api_key=None if own else "sk-none", model=strategy["model"])
    return client, True


async def model_candidates(llm, strategy: dict, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ask the model for `n` rejects, each with its finish_reason (one, selected, for best_of/beam).

    A server that ignores `n` is asked once per candidate by the client (counted in the job's
    report). Raises ItemFailed on a model error.
    """
    from .llm.errors import LLMError

    mode = strategy.get("mode")
    extra = {"logprobs": True} if mode == "best_of" else {"use_beam_search": True} if mode == "beam" else None
    try:
        result = await llm.chat(
            messages,
            model=strategy["model"],
            temperature=strategy.get("temperature"),
            top_p=strategy.get("top_p"),
            n=strategy["n"] if strategy.get("n", 1) > 1 else None,
            max_tokens=strategy.get("max_tokens"),
            extra=extra,
            allow_truncated=True,  # a cut-off reject is kept and flagged `truncated` by the checks
        )
    except LLMError as exc:
        raise ItemFailed(exc.kind, exc.message) from None
    reasons = list(result.finish_reasons) + [None] * len(result.texts)
    candidates = [{"rejected": text, "finish_reason": reasons[i]} for i, text in enumerate(result.texts)]
    if mode not in SELECTING_MODES:
        return candidates
    if mode == "beam":  # vLLM returns the beams best first
        chosen, selection = 0, "beam"
    else:
        scored = [(lp, i) for i, lp in enumerate(result.mean_logprobs) if lp is not None]
        chosen, selection = (max(scored)[1], "best_of") if scored else (0, "no_logprobs")
    candidate = {**candidates[chosen], "selection": selection, "selected_from": len(candidates)}
    if chosen < len(result.mean_logprobs) and result.mean_logprobs[chosen] is not None:
        candidate["mean_logprob"] = round(result.mean_logprobs[chosen], 4)
    return [candidate]


# --------------------------------------------------------------------------- one prompt → pairs
def prepare_record(params: dict, record: PromptRecord, *, cache_token: Any = None) -> dict[str, Any]:
    """What one prompt needs before any model call: the messages, or the model-free reject itself."""
    strategy = params["strategy"]
    name = strategy["name"]
    payload: dict[str, Any] = {"record": asdict(record)}
    if name == "model":
        payload["messages"] = model_messages(strategy, record)
        return payload
    if name == "truncate":
        candidate = {"rejected": truncate_answer(record.chosen, strategy.get("keep", TRUNCATE_KEEP))}
    elif name == "drop_list_items":
        candidate = {"rejected": drop_list_items(record.chosen)}
    elif name == "drop_reasoning":
        candidate = {"rejected": drop_reasoning(record.chosen)}
    elif name == "near_miss":
        other = near_miss_index(params["source"], cache_token).near_miss(record)
        candidate = {"rejected": other.chosen, "near_miss_of": other.key}
    else:
        raise ItemFailed("bad_params", f"未知策略 {name}")
    payload["candidates"] = [candidate]
    return payload


async def generate(llm, payload: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    """The reject candidates for one prepared prompt (a model call only for the model strategy)."""
    if "candidates" in payload:
        return payload["candidates"]
    return await model_candidates(llm, params["strategy"], payload["messages"])


def build_pairs(record: PromptRecord | dict, candidates: list[dict[str, Any]], strategy: dict) -> list[dict[str, Any]]:
    """One pair per candidate, each checked (per-pair checks; boilerplate is batch-level)."""
    if isinstance(record, dict):
        record = PromptRecord(**{**record, "images": tuple(record.get("images") or ())})
    pairs = []
    for number, candidate in enumerate(candidates, start=1):
        rejected = candidate["rejected"] or ""
        result = pair_checks.check_pair(record.prompt, record.chosen, rejected, finish_reason=candidate.get("finish_reason"))
        metrics = dict(result.metrics)
        for extra in ("finish_reason", "near_miss_of", "selection", "selected_from", "mean_logprob"):
            if candidate.get(extra):
                metrics[extra] = candidate[extra]
        pairs.append({
            "key": record.key if len(candidates) == 1 else f"{record.key}#{number}",
            "source": record.source,
            "prompt": record.prompt,
            "chosen": record.chosen,
            "rejected": rejected,
            "images": list(record.images),
            "strategy": strategy["name"],
            "issues": result.issues,
            "metrics": metrics,
        })
    return pairs


PAIR_FIELDS = ("key", "source", "prompt", "chosen", "rejected", "images", "strategy", "issues", "metrics")


@transaction.atomic
def pairs_store(*, job: Job, pairs: list[dict[str, Any]]) -> list[PreferencePair]:
    """Write a prompt's pairs idempotently (one row per job and key); a reviewed pair is left alone."""
    stored = []
    for pair in pairs:
        existing = PreferencePair.objects.select_for_update().filter(job=job, key=pair["key"]).first()
        if existing is not None and existing.decision != ReviewDecision.PENDING:
            stored.append(existing)
            continue
        defaults = {name: pair[name] for name in PAIR_FIELDS if name != "key"}
        row, _ = PreferencePair.objects.update_or_create(job=job, key=pair["key"], defaults=defaults)
        stored.append(row)
    return stored


# --------------------------------------------------------------------------- preview
def preview(params: dict[str, Any], n: int = PREVIEW_DEFAULT) -> dict[str, Any]:
    """Run the strategy on the first `n` prompts, writing nothing: exactly the pairs the job would store.

    Returns {"pairs": [...], "failures": [{"key", "kind", "message"}], "report", "context"}; the context
    names the endpoint, model and template, and shows the first request as it is sent.
    """
    params = clean_params(params)
    records = []
    for record in iter_source_records(params["source"]):
        if len(records) >= n or (params.get("limit") and len(records) >= params["limit"]):
            break
        records.append(record)
    strategy = params["strategy"]

    # Reading the source (and the near-miss index) is sync database work: done before the event loop.
    prepared: list[tuple[PromptRecord, Any]] = []
    for record in records:
        try:
            prepared.append((record, prepare_record(params, record)))
        except ItemFailed as exc:
            prepared.append((record, exc))

    async def run() -> list[tuple[PromptRecord, Any]]:
        client, owned = llm_for(strategy) if strategy["name"] == "model" else (None, False)
        try:
            async def one(record: PromptRecord, payload: Any):
                if isinstance(payload, ItemFailed):
                    return record, payload
                try:
                    return record, await generate(client, payload, params)
                except ItemFailed as exc:
                    return record, exc

            return await asyncio.gather(*(one(r, p) for r, p in prepared))
        finally:
            if owned:
                await client.aclose()

    outcomes = asyncio.run(run()) if prepared else []
    pairs, failures = [], []
    for record, outcome in outcomes:
        if isinstance(outcome, ItemFailed):
            failures.append({"key": record.key, "prompt": record.prompt, "kind": outcome.kind, "message": outcome.message})
        else:
            pairs.extend(build_pairs(record, outcome, strategy))
    results = [pair_checks.PairResult(p["issues"], p["metrics"]) for p in pairs]
    clusters = pair_checks.find_boilerplate([p["prompt"] for p in pairs], [p["rejected"] for p in pairs])
    report = pair_checks.batch_report([r.issues for r in results], clusters)
    return {
        "pairs": pairs,
        "failures": failures,
        "report": report,
        "context": job_context(params, records[0] if records else None),
        "params": params,
    }


def job_context(params: dict[str, Any], first: PromptRecord | None = None) -> dict[str, Any]:
    """What produced the rejects, for the preview and the report: strategy, endpoint, model, template."""
    strategy = params["strategy"]
    context: dict[str, Any] = {
        "source": params["source"],
        "source_label": SOURCES.get(params["source"]["name"], ""),
        "strategy": strategy["name"],
        "strategy_label": STRATEGIES.get(strategy["name"], ""),
    }
    if strategy["name"] == "model":
        context.update(
            endpoint=strategy["base_url"], model=strategy["model"], template=strategy["template"],
            system=strategy.get("system", ""), mode=strategy["mode"], temperature=strategy.get("temperature"),
            top_p=strategy.get("top_p"), n=strategy.get("n", 1), max_tokens=strategy.get("max_tokens"),
        )
        if first is not None:
            context["example_messages"] = display_messages(model_messages(strategy, first))
    return context


# --------------------------------------------------------------------------- the job
def job_checks(job: Job) -> dict[str, Any]:
    """Run the batch check (boilerplate) over all pairs of a job, store it, and build the job report."""
    rows = list(PreferencePair.objects.filter(job=job).order_by("id").values_list("id", "prompt", "rejected", "issues", "metrics"))
    clusters = pair_checks.find_boilerplate([r[1] for r in rows], [r[2] for r in rows])
    membership = {}
    for number, cluster in enumerate(clusters, start=1):
        for index in cluster.members:
            membership[index] = (number, cluster.prompts)
    changed = []
    for index, (pk, _prompt, _rejected, issues, metrics) in enumerate(rows):
        issues = [i for i in issues if i != "boilerplate"]
        metrics = {k: v for k, v in (metrics or {}).items() if not k.startswith("boilerplate_")}
        if index in membership:
            issues.append("boilerplate")
            issues.sort(key=pair_checks.ISSUE_NAMES.index)
            metrics["boilerplate_cluster"], metrics["boilerplate_prompts"] = membership[index]
        if issues != rows[index][3] or metrics != (rows[index][4] or {}):
            changed.append(PreferencePair(pk=pk, issues=issues, metrics=metrics))
    PreferencePair.objects.bulk_update(changed, ["issues", "metrics"], batch_size=500)
    issue_lists = list(PreferencePair.objects.filter(job=job).values_list("issues", flat=True))
    report = pair_checks.batch_report(issue_lists, clusters)
    failed = Counter(job.items.filter(status="failed").values_list("error_kind", flat=True))
    report["failed_items"] = dict(failed)
    fallbacks = (((job.report or {}).get("engine") or {}).get("llm") or {}).get("n_fallbacks") or 0
    if fallbacks:
        n = job.params["strategy"].get("n", 1)
        report["n_ignored"] = {"prompts": fallbacks, "n": n,
                               "message": f"模型服务忽略了 n={n}（只返回一个候选）：已改为每个 prompt 分别请求 {n} 次"}
    report["context"] = job_context(job.params)
    return report


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


# --------------------------------------------------------------------------- review (services)
REVIEW_ACTIONS = {
    "accept": "接受",
    "swap": "交换 chosen / rejected",
    "edit": "保存修改",
    "discard": "丢弃",
    "reset": "恢复待审核",
}
# What an action did, for the notice after it ("已丢弃 feedback:3，已进入下一条。").
REVIEW_DONE = {"accept": "已接受", "swap": "已交换", "edit": "已保存修改", "discard": "已丢弃", "reset": "已恢复待审核"}
# Actions that decide a pair and move the reviewer on to the next one (reset stays on the pair).
DECIDING_ACTIONS = ("accept", "swap", "edit", "discard")
# A pair's review status as the DPO pages name it. "rejected" is DPO's own word for the worse answer,
# so a discarded pair reads 已丢弃 (the stored value stays ReviewDecision.REJECTED).
DECISION_LABELS = {
    ReviewDecision.PENDING: "待审核",
    ReviewDecision.ACCEPTED: "已接受",
    ReviewDecision.EDITED: "已修改",
    ReviewDecision.REJECTED: "已丢弃",
}


def can_review_pairs(user) -> bool:
    """Any signed-in, active user may review pairs: pairs belong to no category, so assignments do not apply."""
    return bool(user and user.is_authenticated and user.is_active)


def _recheck(pair: PreferencePair, *, keep_boilerplate: bool) -> None:
    """Re-run the per-pair checks after an edit; the batch-level boilerplate flag survives only if asked."""
    result = pair_checks.check_pair(pair.prompt, pair.chosen, pair.rejected)
    metrics = dict(result.metrics)
    if keep_boilerplate and "boilerplate" in pair.issues:
        metrics.update({k: v for k, v in pair.metrics.items() if k.startswith("boilerplate_")})
        result.issues.append("boilerplate")
        result.issues.sort(key=pair_checks.ISSUE_NAMES.index)
    pair.issues, pair.metrics = result.issues, metrics


@transaction.atomic
def pair_review(
    *, pair: PreferencePair, user, action: str, version: int, chosen: str | None = None, rejected: str | None = None
) -> PreferencePair:
    """A reviewer's decision on a pair: accept, swap the two answers, edit either side, discard, or reset.

    `version` is the version the reviewer saw; ApplicationError(code="conflict") if someone saved since.
    Swapping and editing re-run the pair checks on the new texts.
    """
    from django.utils import timezone

    if not can_review_pairs(user):
        raise ApplicationError("没有审核权限", code="forbidden")
    if action not in REVIEW_ACTIONS:
        raise ApplicationError("未知操作")
    pair = PreferencePair.objects.select_for_update().get(pk=pair.pk)
    if int(version) != pair.version:
        raise conflict_error("这条偏好对已被其他人修改，请刷新后再操作", current_version=pair.version)
    if action == "swap":
        if not pair.rejected.strip():
            raise ApplicationError("rejected 为空，不能交换")
        pair.chosen, pair.rejected = pair.rejected, pair.chosen
        _recheck(pair, keep_boilerplate=False)
        pair.metrics["swapped"] = True
        pair.decision = ReviewDecision.EDITED
    elif action == "edit":
        new_chosen = pair.chosen if chosen is None else chosen.strip()
        new_rejected = pair.rejected if rejected is None else rejected.strip()
        if not new_chosen or not new_rejected:
            raise ApplicationError("chosen 和 rejected 都不能为空")
        keep = new_rejected == pair.rejected
        pair.chosen, pair.rejected = new_chosen, new_rejected
        _recheck(pair, keep_boilerplate=keep)
        pair.decision = ReviewDecision.EDITED
    elif action == "accept":
        pair.decision = ReviewDecision.ACCEPTED
    elif action == "discard":
        pair.decision = ReviewDecision.REJECTED
    else:
        pair.decision = ReviewDecision.PENDING
    pair.decided_by = user if action != "reset" else None
    pair.decided_at = timezone.now() if action != "reset" else None
    pair.version += 1
    pair.save()
    return pair


# --------------------------------------------------------------------------- selectors
def dpo_jobs():
    """DPO jobs, newest first, with their pair counts (one query)."""
    from django.db.models import Count

    return (
        Job.objects.filter(kind=JobKind.DPO)
        .select_related("created_by")
        .annotate(
            pair_count=Count("preference_pairs"),
            discarded_count=Count("preference_pairs", filter=Q(preference_pairs__decision=ReviewDecision.REJECTED)),
        )
        .order_by("-created_at")
    )


def job_pairs(*, job: Job, issue: str = "", decision: str = ""):
    """The pairs of a job, optionally only those with one issue or one decision ("flagged" = any issue)."""
    rows = PreferencePair.objects.filter(job=job).select_related("decided_by").order_by("id")
    if issue == "flagged":
        rows = rows.exclude(issues=[])
    elif issue == "clean":
        rows = rows.filter(issues=[])
    elif issue in pair_checks.ISSUE_NAMES:
        # JSON containment is not portable to SQLite; the issue names are plain strings in a list.
        rows = rows.filter(issues__icontains=f'"{issue}"')
    if decision in ReviewDecision.values:
        rows = rows.filter(decision=decision)
    return rows


def job_report(job: Job) -> dict[str, Any]:
    """The job's ranked issues as the pairs stand now (reviewers edit them), plus decision counts."""
    rows = list(PreferencePair.objects.filter(job=job).values_list("issues", "decision"))
    report = pair_checks.batch_report([issues for issues, _ in rows], (job.report or {}).get("boilerplate_clusters", []))
    decisions = Counter(decision for _, decision in rows)
    report["decisions"] = dict(decisions)
    report["decision_rows"] = [(DECISION_LABELS[value], decisions[value]) for value in DECISION_LABELS if decisions[value]]
    report["context"] = job_context(job.params)
    report["failed_items"] = (job.report or {}).get("failed_items", {})
    report["n_ignored"] = (job.report or {}).get("n_ignored")
    return report


# --------------------------------------------------------------------------- export
EXPORT_FORMATS = {
    "trl_preference": "TRL 标准（prompt / chosen / rejected）",
    "trl_preference_conversational": "TRL 对话式（messages）",
    "alpaca_preference": "LLaMA-Factory alpaca 风格（ranking）",
    "sharegpt_preference": "LLaMA-Factory sharegpt 风格（ranking）",
    "prompt_chosen_reject": "团队训练脚本（prompt / chosen / reject）",
}
# The export formats that keep a pair's images (the others refuse image pairs with a message).
IMAGE_EXPORT_FORMATS = tuple(f for f in EXPORT_FORMATS if "images" in formats.FORMATS[f].optional_columns)


def export_records(*, job: Job, include_flagged: bool = False, counts: Counter | None = None) -> Iterator[dict]:
    """Builder records for a job's pairs: discarded pairs never; flagged pending pairs only if asked.

    A pair a reviewer accepted or edited is exported whatever its check results.
    """
    counts = counts if counts is not None else Counter()
    rows = PreferencePair.objects.filter(job=job).order_by("id").values_list(
        "key", "source", "prompt", "chosen", "rejected", "images", "issues", "decision"
    )
    for key, source, prompt, chosen, rejected, images, issues, decision in rows.iterator(chunk_size=2000):
        if decision == ReviewDecision.REJECTED:
            counts["discarded"] += 1
            continue
        if issues and decision == ReviewDecision.PENDING and not include_flagged:
            counts["flagged_pending"] += 1
            continue
        counts["exported"] += 1
        record = {"id": key, "prompt": prompt, "chosen": chosen, "rejected": rejected}
        if images:
            record["images"] = list(images)
        yield record


def export_file_name(*, job: Job, fmt: str) -> str:
    """The data file's name inside a DPO export's folder (each export has a folder of its own)."""
    suffix = "jsonl" if fmt.startswith("trl") or fmt == "prompt_chosen_reject" else "json"
    return f"dpo_job{job.pk}_{fmt}.{suffix}"


def pairs_export(*, job: Job, fmt: str, user=None, include_flagged: bool = False, file_name: str | None = None):
    """Export a job's pairs through the dataset builder into a new export folder; returns the Export.

    `file_name`: the data file's name in the folder (default `dpo_job<id>_<format>.json[l]`)."""
    from .datasets.builder import BuildError, BuildOptions, Source, build_export

    if fmt not in EXPORT_FORMATS:
        raise ApplicationError("未知导出格式")
    counts: Counter = Counter()
    supports_images = "images" in formats.FORMATS[fmt].optional_columns

    def records():
        counts.clear()  # the builder may read the source more than once
        for record in export_records(job=job, include_flagged=include_flagged, counts=counts):
            if record.get("images") and not supports_images:
                # Dropping the image but keeping "<image>" in the prompt would train on text alone.
                raise ApplicationError(
                    f"偏好对 {record['id']} 带图片，{EXPORT_FORMATS[fmt]} 不能携带图片；图片偏好对请选："
                    + "、".join(EXPORT_FORMATS[f] for f in IMAGE_EXPORT_FORMATS), code="images_unsupported")
            yield record

    options = BuildOptions(
        format=fmt,
        # Several rejects per prompt are several rows: never dedup on the prompt.
        dedup=False,
        shuffle=False,
        dataset_name=Path(file_name).stem if file_name else f"dpo_job{job.pk}_{fmt}",
    )
    try:
        export, _ = build_export(
            [Source("dpo", records)], options, kind="dpo", file_name=file_name or export_file_name(job=job, fmt=fmt), user=user,
            params={"job_id": job.pk, "include_flagged": include_flagged}, label=f"job{job.pk}-{fmt}",
            extra_report=lambda: {"pairs": dict(counts)},
        )
    except BuildError as exc:
        raise ApplicationError(str(exc)) from None
    return export
