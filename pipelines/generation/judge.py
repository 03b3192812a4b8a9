"""The judge: a second model call that scores a generated example and says why it fails.

The judge answers JSON with `overall_score` (0–10), `pass`, `issues` (a list of short reasons) and
per-criterion scores. Models wrap JSON in code fences, add prose around it, or return something
that is not JSON at all; `parse_verdict` accepts the first two and raises `VerdictUnparseable` for
the last, so the caller can record "the verdict could not be read" as a failure of its own kind.
Whether an example passes is decided here by a configurable threshold on `overall_score`; the
judge's own `pass` flag is kept in the verdict but only used when it gave no score.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PASS_THRESHOLD = 7.0

# Criteria the judge scores, each 0–10 (the keys of `scores` in its JSON answer).
CRITERIA: dict[str, str] = {
    "visual_grounding": "视觉依据",
    "reasoning_depth": "推理深度",
    "answer_correctness": "答案正确性",
    "language_quality": "语言质量",
    "format_compliance": "格式规范",
}

# Stable failure reasons the pipeline itself produces (the judge's issues are free text).
REASON_UNPARSEABLE = "Unparseable judge verdict"
REASON_BELOW_THRESHOLD = "Score below threshold"
REASON_JUDGE_FAILED = "Judge call failed"

# The judge's sampling parameters: per job (`judge_temperature`, …) or by default from the settings
# LLM_JUDGE_TEMPERATURE / LLM_JUDGE_TOP_P / LLM_JUDGE_MAX_TOKENS. An empty setting, or "omit" for a
# job, leaves the parameter out of the request: OpenAI's o-series models answer 400 to any
# temperature.
JUDGE_PARAMS = {"temperature": (float, 0.0, 2.0), "top_p": (float, 0.0, 1.0), "max_tokens": (int, 1, 32768)}
OMIT = "omit"


def clean_judge_param(name: str, value: Any) -> Any:
    """A per-job judge parameter: a number in range, OMIT, or None (use the setting)."""
    if value is None or str(value).strip() == "":
        return None
    if str(value).strip().lower() in {OMIT, "none", "-"}:
        return OMIT
    cast, low, high = JUDGE_PARAMS[name]
    try:
        number = cast(value)
    except (TypeError, ValueError):
        raise ValueError(f"评判参数 {name} 必须是数字，或 omit（不发送）") from None
    if not low <= number <= high:
        raise ValueError(f"评判参数 {name} 必须在 {low} 到 {high} 之间")
    return number


def judge_request_params(job_params: dict[str, Any]) -> dict[str, Any]:
    """The parameters sent with a judge call: the job's, else the settings'; unset ones left out."""
    from django.conf import settings

    sent = {}
    for name in JUDGE_PARAMS:
        value = job_params.get(f"judge_{name}")
        if value is None:
            value = clean_judge_param(name, getattr(settings, f"LLM_JUDGE_{name.upper()}"))
        if value is not None and value != OMIT:
            sent[name] = value
    return sent

# The first line doubles as the marker the LLM simulator's judge responder recognises.
JUDGE_SYSTEM_PROMPT = """You are the quality judge for visual question answering training data.
You receive a source (an image and its wiki title, with optional facts), a question about the image
and a response written as <look>what is seen</look><think>step-by-step reasoning</think><answer>final answer</answer>.
Score the example strictly. Answer with JSON only, no prose, in exactly this shape:
{"overall_score": <0-10>, "pass": <true|false>, "issues": ["short reason", ...],
 "scores": {"visual_grounding": <0-10>, "reasoning_depth": <0-10>, "answer_correctness": <0-10>,
            "language_quality": <0-10>, "format_compliance": <0-10>}}
"pass" is true when overall_score >= %(threshold)s. List every problem in "issues" (empty when none)."""


class VerdictUnparseable(ValueError):
    """The judge's answer holds no usable verdict (not JSON, or no score and no pass flag)."""


@dataclass
class Verdict:
    overall_score: float | None
    passed: bool
    judge_pass: bool | None
    issues: list[str]
    scores: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_validation_result(self) -> dict[str, Any]:
        """The verdict as the `validation_result` object of the team's example records."""
        result = dict(self.extra)
        result.update(
            {
                "overall_score": self.overall_score,
                "pass": self.passed,
                "issues": list(self.issues),
                "scores": dict(self.scores),
            }
        )
        if self.judge_pass is not None and self.judge_pass != self.passed:
            result["judge_pass"] = self.judge_pass
        return result


def build_judge_messages(
    *, wiki_title: str, facts: list[str], question: str, response: str, threshold: float
) -> list[dict[str, str]]:
    """The chat messages asking the judge for a verdict on one example."""
    fact_lines = "\n".join(f"- {fact}" for fact in facts) or "(none)"
    user = (
        f"Wiki title: {wiki_title}\n"
        f"Facts:\n{fact_lines}\n\n"
        f"Question:\n{question}\n\n"
        f"Response:\n{response}"
    )
    return [
        {"role": "system", "content": JUDGE_SYSTEM_PROMPT % {"threshold": _fmt(threshold)}},
        {"role": "user", "content": user},
    ]


def _fmt(number: float) -> str:
    return f"{number:g}"


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


def _json_object(raw: str) -> dict[str, Any]:
    """The first JSON object in `raw`, looking inside code fences and past leading prose."""
    candidates = [m.group(1) for m in _FENCE.finditer(raw)] + [raw]
    decoder = json.JSONDecoder()
    for text in candidates:
        for start in [m.start() for m in re.finditer(r"\{", text)][:20]:
            try:
                value, _ = decoder.raw_decode(text, start)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise VerdictUnparseable("no JSON object in the judge's answer")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*", value)
        if match:
            return float(match.group(1))
    return None


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "pass", "passed"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "no", "fail", "failed"}:
        return False
    return None


def _issues(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict):
                item = item.get("issue") or item.get("description") or json.dumps(item, ensure_ascii=False)
            text = str(item).strip()
            if text:
                out.append(text)
        return out
    return [str(value)]


def parse_verdict(raw: str, *, threshold: float = DEFAULT_PASS_THRESHOLD) -> Verdict:
    """Read the judge's answer; raise VerdictUnparseable when it holds no usable verdict."""
    data = _json_object(raw or "")
    score = _number(data.get("overall_score", data.get("score")))
    if score is not None and not 0 <= score <= 10:
        raise VerdictUnparseable(f"overall_score out of range: {score}")
    judge_pass = _flag(data.get("pass", data.get("passed")))
    if score is None and judge_pass is None:
        raise VerdictUnparseable("the verdict has neither overall_score nor pass")
    scores: dict[str, float] = {}
    raw_scores = data.get("scores") if isinstance(data.get("scores"), dict) else {}
    for name in CRITERIA:
        value = _number(raw_scores.get(name, data.get(name)))
        if value is not None:
            scores[name] = value
    for name, value in raw_scores.items():
        if name not in scores and _number(value) is not None:
            scores[name] = _number(value)
    passed = score >= threshold if score is not None else bool(judge_pass)
    known = {"overall_score", "score", "pass", "passed", "issues", "scores", *CRITERIA}
    extra = {k: v for k, v in data.items() if k not in known}
    return Verdict(
        overall_score=score,
        passed=passed,
        judge_pass=judge_pass,
        issues=_issues(data.get("issues")),
        scores=scores,
        extra=extra,
    )


def failure_reasons_for(verdict: Verdict) -> list[str]:
    """Why a failed verdict failed: the judge's issues, or the bare threshold when it named none."""
    if verdict.passed:
        return []
    return list(verdict.issues) or [REASON_BELOW_THRESHOLD]
