"""Quality checks on DPO preference pairs (prompt, chosen, rejected).

The failure these exist for (seed 002): a weak SFT model asked for "worse answers" produced the same
off-topic text ("这篇文章主要讨论了人工智能在医疗保健领域的应用…") for every prompt, and nobody noticed
until training data had been built from it. Every check is lexical and offline: character n-grams for
CJK text, words for Latin text, so it works on Chinese without a tokenizer or an embedding model.

Issue names are stable (they are stored on rows and written to reports):
    identical       the reject is the chosen answer, or nearly so: the pair teaches nothing
    off_topic       the reject shares almost nothing with the prompt or the chosen answer
    boilerplate     the same (or near-same) reject recurs under many unrelated prompts (batch-level)
    empty           the reject (or the chosen answer) has no content
    truncated       the reject stops mid-sentence or was cut at the token limit
    likely_swapped  the reject is longer and richer than the chosen answer: probably the better one

Per-pair checks are `check_pair`; the batch check is `find_boilerplate`; `check_pairs` runs both and
`batch_report` ranks the issues and, when most rejects are off-topic, says so with the likely causes.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

ISSUE_NAMES = ("identical", "off_topic", "boilerplate", "empty", "truncated", "likely_swapped")

ISSUE_LABELS = {
    "identical": "与 chosen 相同或几乎相同",
    "off_topic": "与 prompt 无关（跑题）",
    "boilerplate": "模板化重复（同一段文字出现在许多不相关的 prompt 下）",
    "empty": "空回答",
    "truncated": "截断 / 话没说完",
    "likely_swapped": "reject 比 chosen 更长更充实（可能弄反了）",
}

# --------------------------------------------------------------------------- thresholds
# identical: bigram-multiset Dice ≥ 0.95 means at most a few characters differ; dropping one item of a
# five-item list already falls to ≈ 0.85, so real degradations are not caught.
IDENTICAL_MIN_SIMILARITY = 0.95
# off_topic: a reject whose best overlap with the prompt or the chosen answer is under 0.1 shares at
# most one content n-gram in ten with either — the seed's boilerplate scores ≈ 0 on every prompt.
OFF_TOPIC_MAX_RELEVANCE = 0.10
# off_topic relative to the chosen: when the chosen answer echoes the prompt strongly, a reject with
# under a third of the chosen's relevance has wandered off even if it clears the absolute floor.
OFF_TOPIC_RELATIVE_TO_CHOSEN = 1 / 3
# Below this many content n-grams a text is too short to judge relevance ("好的", "B").
RELEVANCE_MIN_GRAMS = 2
# boilerplate: texts whose character-trigram Jaccard is ≥ 0.5 are the same template with slots
# filled differently ("…在医疗保健领域的应用" / "…在金融领域的应用" on a 60-character text ≈ 0.7).
BOILERPLATE_MIN_SIMILARITY = 0.5
# A template under three unrelated prompts is a pattern, not a coincidence; fewer is normal reuse.
BOILERPLATE_MIN_PROMPTS = 3
# Prompts this alike (bigram Dice ≥ 0.8: "…（第4题）" / "…（第14题）") are one prompt asked twice, where the
# same reject is expected; prompts that merely share an instruction template stay unrelated.
SAME_PROMPT_MIN_SIMILARITY = 0.8
# Short rejects ("是", "不知道", "A") legitimately recur across prompts; only longer ones are boilerplate.
BOILERPLATE_MIN_CHARS = 10
# truncated: a reject this long that ends on a letter while the chosen ends a sentence is cut off;
# shorter ones are usually list-like answers ("苹果、香蕉") that end without punctuation.
TRUNCATED_MIN_CHARS = 12
# likely_swapped: the reject is ≥ 1.5× as long and has ≥ 1.3× (and ≥ 5 more) distinct content n-grams —
# clearly more substance, not a few words of padding …
SWAPPED_MIN_LENGTH_RATIO = 1.5
SWAPPED_MIN_RICHNESS_RATIO = 1.3
SWAPPED_MIN_EXTRA_GRAMS = 5
# … and it covers at least half of the chosen answer's content: the fuller answer contains the thinner
# one. A vague reject that only echoes the prompt ("关于水果，这个问题比较复杂…") is longer, not richer.
SWAPPED_MIN_CHOSEN_COVERAGE = 0.5
# The job report calls the batch "mostly off-topic" above half of the rejects (the seed: all of them).
MOSTLY_OFF_TOPIC_SHARE = 0.5

# Likely causes of mostly off-topic rejects, in the seed's words (002: 诊断报告).
OFF_TOPIC_CAUSES = (
    "用错了模型 / checkpoint：加载的可能是预训练模型而不是 SFT 模型，或 checkpoint 路径不对、权重没有正确加载。"
    "请核对下面的 endpoint 和模型名。",
    "prompt 格式与训练时不一致：SFT 训练时 prompt 的形式（例如结尾的 [EOS]、对话模板）必须与生成时完全相同。"
    "请核对下面的 prompt 模板。",
    "采样设置：temperature / top_p 过高会让弱模型生成训练数据中的高频模板；先用 greedy（temperature=0）试几条。",
    "SFT 训练不充分：训练轮数太少或 loss 没有降下来（通常应低于 1.0），模型还没学会按 prompt 作答。",
)

# --------------------------------------------------------------------------- text features
_CJK = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"  # CJK, kana, hangul
)
_RUN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•·]|\d+[.、)）]|[（(]\d+[)）]|[一二三四五六七八九十]+、)\s*", re.MULTILINE)
_INLINE_ITEM_SEP = re.compile(r"[、;；]")

# Function words that appear in any answer and say nothing about its topic.
_STOP_WORDS = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been it this that these "
    "those i you he she we they my your its our their me him her them do does did not no yes so if then "
    "there here what which who how why when can could would should will may might just also very".split()
)
_STOP_BIGRAMS = frozenset(
    "一个 一些 我们 你们 他们 可以 这个 那个 这些 那些 因为 所以 如果 但是 而且 以及 进行 需要 可能 "
    "没有 什么 就是 还是 或者 已经 非常 不是 的是 是一 了一 是的 有的 之一 我的 你的 他的 它的 "
    # Instruction words of prompts ("请介绍一下…", "解释…") name the task, not the topic.
    "请介 介绍 绍一 一下 请问 请解 解释 说明 请列 列出 回答 描述 简单 详细 告诉 帮我 给出 请给".split()
)
_TERMINAL = set("。！？!?.…」』”\"')）】]》>~～")
_MID_SENTENCE = set("，、,;；:：（(“‘《【[-—")
_ELLIPSIS = ("...", "…", "。。。")


def normalize(text: str) -> str:
    """NFKC, lower case, whitespace collapsed: the form texts are compared in."""
    return " ".join(unicodedata.normalize("NFKC", text or "").lower().split())


def content_grams(text: str, *, keep_stop_words: bool = False) -> set[str]:
    """Distinct content n-grams: character bigrams inside CJK runs, words (crudely singularised) in Latin runs.

    Function words are dropped unless `keep_stop_words` (prompt similarity: "列出…" prompts are alike).
    """
    grams: set[str] = set()
    for run in _RUN.findall(normalize(text)):
        if _CJK_RUN.match(run):
            if len(run) == 1:
                grams.add(run)
            else:
                grams.update(run[i : i + 2] for i in range(len(run) - 1))
        elif (keep_stop_words or run not in _STOP_WORDS) and (len(run) > 1 or run.isdigit()):
            # "fruits" and "fruit" are the same topic; "glass" stays "glass".
            grams.add(run[:-1] if len(run) > 3 and run.endswith("s") and not run.endswith("ss") else run)
    return grams if keep_stop_words else grams - _STOP_BIGRAMS


def _bigram_counts(text: str) -> Counter:
    # Letters, digits and CJK only: "苹果，香蕉" and "苹果、香蕉" are the same answer.
    compact = "".join(_RUN.findall(normalize(text)))
    if len(compact) < 2:
        return Counter([compact]) if compact else Counter()
    return Counter(compact[i : i + 2] for i in range(len(compact) - 1))


def similarity(a: str, b: str) -> float:
    """How alike two texts are: Dice coefficient of their character-bigram multisets (1.0 = same)."""
    ca, cb = _bigram_counts(a), _bigram_counts(b)
    total = sum(ca.values()) + sum(cb.values())
    if not total:
        return 1.0
    return 2 * sum((ca & cb).values()) / total


def overlap(a: set[str], b: set[str]) -> float | None:
    """Overlap coefficient |a ∩ b| / min(|a|, |b|); None when either side is too short to judge."""
    if len(a) < RELEVANCE_MIN_GRAMS or len(b) < RELEVANCE_MIN_GRAMS:
        return None
    return len(a & b) / min(len(a), len(b))


def strip_reasoning(text: str) -> str:
    """The answer without its `<think>…</think>` part."""
    return _THINK.sub("", text or "").strip()


def list_item_count(text: str) -> int:
    """Items of a list answer: lines starting with a bullet/number, else 、/；-separated parts."""
    lines = len(_LIST_ITEM.findall(text or ""))
    if lines >= 2:
        return lines
    parts = [p for p in _INLINE_ITEM_SEP.split(text or "") if p.strip()]
    return len(parts) if len(parts) >= 2 else 0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --------------------------------------------------------------------------- per pair
@dataclass
class PairResult:
    """The issues found on one pair and the numbers they were decided on."""

    issues: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"issues": list(self.issues), "metrics": dict(self.metrics)}


def _truncation_signal(chosen: str, rejected: str, finish_reason: str | None) -> str | None:
    """Why the reject looks cut off, or None."""
    if finish_reason == "length":
        return "token_limit"
    text = rejected.rstrip()
    chosen_text = chosen.rstrip()
    if text.count("<think>") > text.count("</think>"):
        return "unclosed_think"
    if text.count("```") % 2:
        return "unclosed_code_block"
    if text.endswith(_ELLIPSIS) and not chosen_text.endswith(_ELLIPSIS):
        return "ellipsis"
    last = text[-1:]
    if last in _MID_SENTENCE:
        return "mid_sentence_punctuation"
    if (
        len(text) >= TRUNCATED_MIN_CHARS
        and last
        and last not in _TERMINAL
        and (last.isalnum() or _CJK_RUN.match(last))
        and chosen_text[-1:] in _TERMINAL
    ):
        return "no_sentence_end"
    return None


def check_pair(prompt: str, chosen: str, rejected: str, *, finish_reason: str | None = None) -> PairResult:
    """Run the per-pair checks (all but `boilerplate`, which needs the batch).

    `finish_reason` is the model's, when the reject was generated ("length" = cut at max_tokens).
    """
    result = PairResult()
    metrics = result.metrics
    chosen_answer, rejected_answer = strip_reasoning(chosen), strip_reasoning(rejected)
    metrics["chosen_chars"] = len(chosen.strip())
    metrics["rejected_chars"] = len(rejected.strip())

    empty_sides = [side for side, text in (("rejected", rejected_answer), ("chosen", chosen_answer)) if not _RUN.search(text)]
    if empty_sides:
        # Nothing else can be judged on an empty side.
        metrics["empty_side"] = empty_sides
        result.issues.append("empty")
        return result

    metrics["similarity"] = _round(similarity(chosen, rejected))
    if normalize(chosen) == normalize(rejected) or metrics["similarity"] >= IDENTICAL_MIN_SIMILARITY:
        result.issues.append("identical")

    prompt_grams, chosen_grams, rejected_grams = (
        content_grams(prompt),
        content_grams(chosen_answer),
        content_grams(rejected_answer),
    )
    reject_to_prompt = overlap(rejected_grams, prompt_grams)
    reject_to_chosen = overlap(rejected_grams, chosen_grams)
    chosen_to_prompt = overlap(chosen_grams, prompt_grams)
    known = [v for v in (reject_to_prompt, reject_to_chosen) if v is not None]
    relevance = max(known) if known else None
    metrics.update(
        relevance=_round(relevance),
        rejected_prompt_overlap=_round(reject_to_prompt),
        rejected_chosen_overlap=_round(reject_to_chosen),
        chosen_relevance=_round(chosen_to_prompt),
    )
    off_topic = False
    if relevance is not None and "identical" not in result.issues:
        floor = OFF_TOPIC_MAX_RELEVANCE
        if chosen_to_prompt is not None:
            floor = max(floor, OFF_TOPIC_RELATIVE_TO_CHOSEN * chosen_to_prompt)
        metrics["off_topic_threshold"] = _round(floor)
        off_topic = relevance < floor
        if off_topic:
            result.issues.append("off_topic")

    signal = _truncation_signal(chosen, rejected, finish_reason)
    if signal:
        metrics["truncation"] = signal
        result.issues.append("truncated")

    length_ratio = len(rejected_answer) / max(len(chosen_answer), 1)
    richness_ratio = len(rejected_grams) / max(len(chosen_grams), 1)
    chosen_coverage = len(chosen_grams & rejected_grams) / len(chosen_grams) if chosen_grams else 0.0
    metrics.update(
        length_ratio=_round(length_ratio),
        richness_ratio=_round(richness_ratio),
        chosen_coverage=_round(chosen_coverage),
        chosen_list_items=list_item_count(chosen_answer),
        rejected_list_items=list_item_count(rejected_answer),
    )
    if (
        not off_topic
        and "identical" not in result.issues
        and length_ratio >= SWAPPED_MIN_LENGTH_RATIO
        and richness_ratio >= SWAPPED_MIN_RICHNESS_RATIO
        and len(rejected_grams) - len(chosen_grams) >= SWAPPED_MIN_EXTRA_GRAMS
        and chosen_coverage >= SWAPPED_MIN_CHOSEN_COVERAGE
    ):
        result.issues.append("likely_swapped")
    return result


# --------------------------------------------------------------------------- batch: boilerplate
@dataclass
class BoilerplateCluster:
    """Rejects that are one template: their positions in the batch and how many distinct prompts they answer."""

    members: list[int]
    prompts: int
    example: str

    def as_dict(self) -> dict[str, Any]:
        return {"count": len(self.members), "prompts": self.prompts, "example": self.example[:300]}


def _shingles(text: str) -> set[str]:
    compact = re.sub(r"\s+", "", normalize(text))
    return {compact[i : i + 3] for i in range(max(len(compact) - 2, 1))}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _unrelated_prompts(prompts: Iterable[str]) -> int:
    """How many mutually unrelated prompts there are, counted up to BOILERPLATE_MIN_PROMPTS.

    "第4题" and "第14题" of the same question are one prompt: the same reject for both is normal.
    """
    representatives: list[str] = []
    for prompt in prompts:
        if all(similarity(prompt, rep) < SAME_PROMPT_MIN_SIMILARITY for rep in representatives):
            representatives.append(prompt)
            if len(representatives) >= BOILERPLATE_MIN_PROMPTS:
                break
    return len(representatives)


def find_boilerplate(prompts: Sequence[str], rejects: Sequence[str]) -> list[BoilerplateCluster]:
    """Groups of near-same rejects recurring under ≥ BOILERPLATE_MIN_PROMPTS distinct prompts.

    Exact duplicates are grouped first; distinct texts are then joined through MinHash-LSH candidates
    verified by exact trigram Jaccard, so the cost stays near-linear in the batch size.
    """
    from datasketch import MinHash, MinHashLSH

    by_text: dict[str, list[int]] = {}
    for index, reject in enumerate(rejects):
        norm = normalize(strip_reasoning(reject))
        if len(norm) >= BOILERPLATE_MIN_CHARS:
            by_text.setdefault(norm, []).append(index)
    texts = list(by_text)
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if len(texts) > 1:
        shingles = [_shingles(t) for t in texts]
        lsh = MinHashLSH(threshold=BOILERPLATE_MIN_SIMILARITY, num_perm=64)
        hashes = []
        # Generating the permutations is most of a MinHash's cost: make them once and share them.
        template = MinHash(num_perm=64, seed=1)
        for i, sh in enumerate(shingles):
            mh = MinHash(num_perm=64, seed=1, permutations=template.permutations, scheme=template.scheme)
            mh.update_batch([s.encode("utf-8") for s in sh])
            hashes.append(mh)
            lsh.insert(str(i), mh)
        for i, mh in enumerate(hashes):
            for other in lsh.query(mh):
                j = int(other)
                # Already joined through another member: no need to verify (keeps big clusters linear).
                if j > i and find(i) != find(j) and _jaccard(shingles[i], shingles[j]) >= BOILERPLATE_MIN_SIMILARITY:
                    parent[find(j)] = find(i)

    groups: dict[int, list[int]] = {}
    for i in range(len(texts)):
        groups.setdefault(find(i), []).append(i)
    clusters = []
    for text_ids in groups.values():
        members = sorted(m for t in text_ids for m in by_text[texts[t]])
        distinct_prompts = len({normalize(prompts[m]) for m in members})
        if _unrelated_prompts(prompts[m] for m in members) >= BOILERPLATE_MIN_PROMPTS:
            # The most frequent text is the clearest example of the template.
            example = max(text_ids, key=lambda t: len(by_text[texts[t]]))
            clusters.append(BoilerplateCluster(members, distinct_prompts, rejects[by_text[texts[example]][0]]))
    clusters.sort(key=lambda c: (-len(c.members), c.members[0]))
    return clusters


def apply_boilerplate(results: Sequence[PairResult], clusters: Iterable[BoilerplateCluster]) -> None:
    """Mark the members of each cluster with the `boilerplate` issue and their cluster's size."""
    for number, cluster in enumerate(clusters, start=1):
        for index in cluster.members:
            result = results[index]
            if "boilerplate" not in result.issues:
                result.issues.append("boilerplate")
            result.metrics["boilerplate_cluster"] = number
            result.metrics["boilerplate_prompts"] = cluster.prompts
            result.issues.sort(key=ISSUE_NAMES.index)


def check_pairs(pairs: Sequence[dict[str, Any]]) -> tuple[list[PairResult], list[BoilerplateCluster]]:
    """Check a batch of pairs (dicts with prompt, chosen, rejected, optional finish_reason)."""
    results = [
        check_pair(p.get("prompt", ""), p.get("chosen", ""), p.get("rejected", ""), finish_reason=p.get("finish_reason"))
        for p in pairs
    ]
    clusters = find_boilerplate([p.get("prompt", "") for p in pairs], [p.get("rejected", "") for p in pairs])
    apply_boilerplate(results, clusters)
    return results, clusters


# --------------------------------------------------------------------------- report
def batch_report(
    issue_lists: Sequence[Sequence[str]], clusters: Sequence[BoilerplateCluster | dict] = ()
) -> dict[str, Any]:
    """Rank the issues of a batch and diagnose it in plain language.

    Returns {"total", "clean", "issues": [{"name", "label", "count", "share"}…] (most frequent first),
    "boilerplate_clusters", "off_topic_share", "mostly_off_topic", "diagnosis": {"headline", "causes"}|None}.
    """
    total = len(issue_lists)
    counts = Counter(name for issues in issue_lists for name in set(issues))
    ranked = [
        {"name": name, "label": ISSUE_LABELS[name], "count": counts[name], "share": round(counts[name] / total, 3)}
        for name in sorted(counts, key=lambda n: (-counts[n], ISSUE_NAMES.index(n) if n in ISSUE_NAMES else 99))
        if name in ISSUE_LABELS
    ]
    # Boilerplate is the off-topic failure seen from the batch: the seed's rejects were both.
    off_topic = sum(1 for issues in issue_lists if "off_topic" in issues or "boilerplate" in issues)
    off_topic_share = round(off_topic / total, 3) if total else 0.0
    mostly_off_topic = total > 0 and off_topic / total > MOSTLY_OFF_TOPIC_SHARE
    cluster_dicts = [c.as_dict() if isinstance(c, BoilerplateCluster) else dict(c) for c in clusters]
    diagnosis = None
    if mostly_off_topic:
        headline = (
            f"大多数 reject 与 prompt 无关：{off_topic} / {total} 条（{off_topic_share:.0%}）跑题或是模板化重复。"
            "这样的数据不能用来训练 DPO——模型学到的只是“别说这段无关的话”。"
        )
        if cluster_dicts:
            top = cluster_dicts[0]
            headline += f" 最常见的一段在 {top['prompts']} 个不同的 prompt 下重复出现：「{top['example'][:80]}」。"
        diagnosis = {"headline": headline, "causes": list(OFF_TOPIC_CAUSES)}
    return {
        "total": total,
        "clean": sum(1 for issues in issue_lists if not issues),
        "issues": ranked,
        "boilerplate_clusters": cluster_dicts[:10],
        "off_topic_share": off_topic_share,
        "mostly_off_topic": mostly_off_topic,
        "diagnosis": diagnosis,
    }


# --------------------------------------------------------------------------- pair files
def _message_text(value: Any, *, role: str | None = None) -> str:
    """Text of a field that is a string, a {"from"/"role", "value"/"content"} dict, or a list of them."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("content", value.get("value", "")) or "")
    if isinstance(value, list):
        texts = []
        for message in value:
            if not isinstance(message, dict):
                raise ValueError("a message list must hold objects")
            who = message.get("role", message.get("from"))
            if role is None or who in role.split("|"):
                texts.append(_message_text(message))
        return "\n".join(texts)
    raise ValueError(f"unexpected value of type {type(value).__name__}")


def pair_from_record(record: Any) -> dict[str, str]:
    """Prompt, chosen and rejected from a TRL (standard or conversational), alpaca- or sharegpt-style record.

    The seed's `reject` key is accepted as `rejected`. Raises ValueError naming what is missing.
    """
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    if "rejected" in record:
        rejected = record["rejected"]
    elif "reject" in record:
        rejected = record["reject"]
    else:
        raise ValueError("missing key 'rejected' (or 'reject')")
    if "chosen" not in record:
        raise ValueError("missing key 'chosen'")
    if "prompt" in record:
        prompt = _message_text(record["prompt"], role="user|human|system")
    elif "instruction" in record:
        prompt = str(record["instruction"] or "")
        if record.get("input"):
            prompt = f"{prompt}\n{record['input']}"
    elif "conversations" in record:
        prompt = _message_text(record["conversations"], role="human|user")
    else:
        raise ValueError("missing key 'prompt' (or 'instruction', or 'conversations')")
    return {
        "prompt": prompt,
        "chosen": _message_text(record["chosen"], role="assistant|gpt"),
        "rejected": _message_text(rejected, role="assistant|gpt"),
    }


@dataclass
class PairLine:
    """One line of a pair file: its number, its id, and the pair or why it could not be read."""

    line_no: int
    id: Any
    pair: dict[str, str] | None = None
    error: str = ""


def read_pair_file(lines: Iterable[str | bytes]) -> Iterable[PairLine]:
    """Parse JSON lines into pairs; a malformed line yields a PairLine with its error, the rest go on."""
    import json

    for line_no, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield PairLine(line_no, line_no, error=f"not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
        raw = raw.strip()
        if line_no == 1:
            raw = raw.lstrip("\ufeff")
        if not raw:
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield PairLine(line_no, line_no, error=f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        record_id = record.get("id", line_no) if isinstance(record, dict) else line_no
        try:
            yield PairLine(line_no, record_id, pair=pair_from_record(record))
        except ValueError as exc:
            yield PairLine(line_no, record_id, error=str(exc))


def load_pair_file(path) -> tuple[list[PairLine], list[PairLine]]:
    """Read a pair file (JSON lines, or one JSON array): (readable lines, malformed lines)."""
    import json
    from pathlib import Path

    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        # A LLaMA-Factory .json file: one array; "line" numbers are the record numbers.
        try:
            records = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return [], [PairLine(1, 1, error=f"invalid JSON array: {exc}")]
        parsed = []
        for number, record in enumerate(records, start=1):
            record_id = record.get("id", number) if isinstance(record, dict) else number
            try:
                parsed.append(PairLine(number, record_id, pair=pair_from_record(record)))
            except ValueError as exc:
                parsed.append(PairLine(number, record_id, error=str(exc)))
    else:
        with path.open("rb") as fh:
            parsed = list(read_pair_file(fh))
    return [p for p in parsed if p.pair is not None], [p for p in parsed if p.pair is None]


def format_report(report: dict[str, Any], *, malformed: int = 0) -> str:
    """The batch report as plain text for the terminal."""
    lines = [f"{report['total']} pairs checked, {report['clean']} without issues" + (f", {malformed} malformed lines skipped" if malformed else "")]
    for issue in report["issues"]:
        lines.append(f"  {issue['name']:<15} {issue['count']:>6}  {issue['share']:>6.1%}  {issue['label']}")
    for cluster in report["boilerplate_clusters"][:3]:
        lines.append(f"  boilerplate ×{cluster['count']} under {cluster['prompts']} prompts: {cluster['example'][:60]!r}")
    if report["diagnosis"]:
        lines.append("")
        lines.append(report["diagnosis"]["headline"])
        lines.append("可能的原因：")
        lines.extend(f"  {n}. {cause}" for n, cause in enumerate(report["diagnosis"]["causes"], start=1))
    return "\n".join(lines)
