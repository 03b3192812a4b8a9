"""Simulated judge for the generation job (pipelines/generation/judge.py).

Reads the response it is shown and complains the way the team's judge did: repeated sentences
("Repetitive language in cycles"), thin reasoning ("Insufficient depth in reasoning"), a vague
<look> ("Missing visual details"), now and then implausible options or an unsupported answer.
The score falls with each issue; `pass` follows the threshold stated in the system prompt. Some
answers come in a ```json fence, as real models do. Markers in the source's wiki title steer tests:

    [judge-pass]        no issues, a high score
    [judge-fail]        two issues, a low score
    [judge-malformed]   a truncated, unparseable JSON answer
    [judge-prose]       a verdict buried in prose (parseable)
"""
import json
import random
import re

from pipelines.generation.judge import JUDGE_SYSTEM_PROMPT
from pipelines.llm.simulator.messages import content_text

PRIORITY = 10
_MARK = JUDGE_SYSTEM_PROMPT.splitlines()[0]

ISSUE_REPETITIVE = "Repetitive language in cycles"
ISSUE_SHALLOW = "Insufficient depth in reasoning"
ISSUE_VISUAL = "Missing visual details"
ISSUE_DISTRACTORS = "Implausible distractor options"
ISSUE_UNSUPPORTED = "Answer not supported by the image"


def _messages(request: dict, role: str) -> list[str]:
    return [content_text(m.get("content")) for m in request.get("messages") or [] if m.get("role") == role]


def matches(request: dict) -> bool:
    return any(text.startswith(_MARK) for text in _messages(request, "system"))


def _part(response: str, tag: str) -> str:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", response, re.S)
    return match.group(1).strip() if match else ""


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?。！？])\s*", text) if s.strip()]


def respond(request: dict, rng: random.Random) -> str:
    system = "\n".join(_messages(request, "system"))
    user = "\n".join(_messages(request, "user"))
    threshold_match = re.search(r"overall_score >= (\d+(?:\.\d+)?)", system)
    threshold = float(threshold_match.group(1)) if threshold_match else 7.0
    title = re.search(r"Wiki title: (.*)", user)
    title = title.group(1) if title else ""
    response = user.split("Response:\n", 1)[-1]
    question = user.split("Question:\n", 1)[-1].split("\n\nResponse:", 1)[0]

    if "[judge-malformed]" in title:
        return '{"overall_score": 6.5, "pass": false, "issues": ["Repetitive language in cycles", "Insuff'

    issues: list[str] = []
    think_sentences = _sentences(_part(response, "think"))
    if len(think_sentences) != len(set(think_sentences)):
        issues.append(ISSUE_REPETITIVE)
    if len(set(think_sentences)) < 2:
        issues.append(ISSUE_SHALLOW)
    look = _part(response, "look")
    # Chinese says as much in fewer characters.
    if len(look) < (16 if re.search(r"[\u4e00-\u9fff]", look) else 40):
        issues.append(ISSUE_VISUAL)
    if "\nA. " in question and rng.random() < 0.15:
        issues.append(ISSUE_DISTRACTORS)
    if rng.random() < 0.05:
        issues.append(ISSUE_UNSUPPORTED)
    if "[judge-pass]" in title:
        issues = []
    elif "[judge-fail]" in title:
        issues = [ISSUE_SHALLOW, ISSUE_VISUAL]

    score = 8.6 - 1.9 * len(issues) + rng.uniform(-0.5, 0.5)
    score = round(min(10.0, max(0.0, score)), 1)

    def criterion(penalised: bool) -> float:
        return round(min(10.0, max(0.0, score + (-1.5 if penalised else 0.6) + rng.uniform(-0.3, 0.3))), 1)

    verdict = {
        "overall_score": score,
        "pass": score >= threshold,
        "issues": issues,
        "scores": {
            "visual_grounding": criterion(ISSUE_VISUAL in issues or ISSUE_UNSUPPORTED in issues),
            "reasoning_depth": criterion(ISSUE_SHALLOW in issues),
            "answer_correctness": criterion(ISSUE_UNSUPPORTED in issues or ISSUE_DISTRACTORS in issues),
            "language_quality": criterion(ISSUE_REPETITIVE in issues),
            "format_compliance": criterion(False),
        },
    }
    text = json.dumps(verdict, ensure_ascii=False)
    if "[judge-prose]" in title:
        return f"Here is my assessment of the example.\n{text}\nLet me know if you need more detail."
    if rng.random() < 0.2:
        return f"```json\n{json.dumps(verdict, ensure_ascii=False, indent=2)}\n```"
    return text
