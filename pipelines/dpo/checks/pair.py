"""Quality checks on DPO preference pairs (prompt, chosen, rejected).

The failure these exist for (seed 002): a weak SFT model asked for "worse answers" produced the same
off-topic text ("这篇文章主要讨论了人工智能在医疗保健领域的应用…") for every prompt, and nobody noticed
until training data had been built from it. Every check is lexical and offline: character n-grams for
CJK text, words for Latin text, so it works on Chinese without a tokenizer or an embedding model.

Issue names are stable (they are stored on rows and written to reports):
    identical       the reject is the chosen answer, or nearly so: the pair teaches nothing
    off_topic       the reject is about something else: almost none of its content relates to the
                    prompt or the chosen answer
    echo            the reject is mostly a copy of the prompt (or its start) instead of an answer
    boilerplate     the same content recurs under many unrelated prompts (batch-level); a reply written
                    from a template but filled with its own prompt's specifics (order number, product)
                    is not boilerplate
    empty           the reject (or the chosen answer) has no content
    truncated       the reject stops mid-sentence or was cut at the token limit
    likely_swapped  the reject is the fuller answer of the two: probably the better one

How well they work is measured, not asserted: `make bench` (section dpo_checks) prints precision and
recall per issue on the labelled set in tests/dpo_eval/, and a test holds the floor.

Per-pair checks are `check_pair`; the batch check is `find_boilerplate`; `check_pairs` runs both and
`batch_report` ranks the issues and, when most rejects are off-topic or echoes, says so with the likely
causes.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ISSUE_NAMES = ("identical", "off_topic", "echo", "boilerplate", "empty", "truncated", "likely_swapped")

ISSUE_LABELS = {
    "identical": "与 chosen 相同或几乎相同",
    "off_topic": "与 prompt 无关（跑题）",
    "echo": "复述 prompt（reject 大部分是 prompt 的原文）",
    "boilerplate": "模板化重复（同一段内容出现在许多不相关的 prompt 下）",
    "empty": "空回答",
    "truncated": "截断 / 话没说完",
    "likely_swapped": "reject 比 chosen 更完整（可能弄反了）",
}
# What each check asks, for pages that list every check with its result ("是否跑题 ✓ 通过").
CHECK_TITLES = {
    "identical": "是否与 chosen 相同",
    "off_topic": "是否跑题",
    "echo": "是否复述 prompt",
    "boilerplate": "是否模板化重复",
    "empty": "是否为空",
    "truncated": "是否截断",
    "likely_swapped": "是否弄反",
}

# --------------------------------------------------------------------------- thresholds
# Sizes are in "units": a CJK character bigram counts 1, a Latin word 2 (a word carries about as much
# as two Chinese characters), so one threshold serves both languages.
#
# identical: bigram-multiset Dice ≥ 0.95 on the text without spacing and with punctuation unified means
# at most a few characters differ; dropping one item of a five-item list already falls to ≈ 0.85.
IDENTICAL_MIN_SIMILARITY = 0.95
# off_topic is judged on the share of the reject's content found in the prompt or the chosen answer.
# Off-topic text shares ≤ 0.07 of its bigrams/words with them (the seed's boilerplate: 0); on-topic
# answers, even vague ones, share ≥ 0.1 — or, when they rephrase, many single characters (the
# character test below).
OFF_TOPIC_MAX_RELEVANCE = 0.10
# … and under 0.3 of its distinct content characters (CJK): "春天来了，花都开了" shares one bigram with
# "写一首关于春天的五言绝句" but a third of its characters with the prompt and the poem.
OFF_TOPIC_MAX_CHAR_RELEVANCE = 0.30
# … and it mentions nothing of its prompt: a reject that names the prompt's topic ("学英语是一件需要耐心的
#事情…" for "怎样才能学好英语？") is on the topic, however badly it answers; one of these is enough.
# Misaligned rows and the seed's boilerplate mention nothing of the prompt they sit under.
OFF_TOPIC_MAX_PROMPT_MENTIONS = 0
# A reject needs this much content to be called off-topic: "多休息就好了" (6) or "Because they are happy"
# are short vague answers whose words happen to differ; an unrelated answer runs to a sentence or more.
OFF_TOPIC_MIN_SIZE = 12
# echo: ≥ 0.85 of the reject's content, by length, is copied from the prompt — "水的化学式是HO" restates
# the question but answers it (0.67); the prompt echoed behind "好的，" is 1.0, with a few hedging words
# around it ("…的话，比如…等等") 0.89 …
ECHO_MIN_COPY = 0.85
# … and the reject has at least this much content (CJK characters; words count 2) — or it is the prompt's
# beginning, at least ECHO_MIN_PIECE tokens of it ("太阳系有几颗", "What is inflation?"): short answers made
# of the prompt's words ("情绪：负面", "15% of 80 is 15", an option the prompt lists) are answers …
ECHO_MIN_SIZE = 8
ECHO_MIN_PIECE = 3
# … and where the prompt is an instruction followed by its input ("改正错别字：我门…"), the reject copies
# the instruction: returning the input unchanged is a failed edit, a legitimate worse answer. Without
# an input part, the chosen answer must copy clearly less (restating tasks copy the prompt too).
ECHO_MIN_INSTRUCTION_COPY = 2
ECHO_MIN_MARGIN = 0.30
# boilerplate: rejects whose residuals (the text left after removing what their own prompt explains)
# have token-trigram Jaccard ≥ 0.5 are one template: "…在医疗保健领域的应用" / "…在金融领域的应用" ≈ 0.8.
BOILERPLATE_MIN_SIMILARITY = 0.5
# … or a residual ≥ 0.6 contained in the other: one text with a sentence more or less, or a variant
# ending ("请问您还有其他问题吗？" / "请问还有什么可以帮您的吗？").
BOILERPLATE_MIN_CONTAINMENT = 0.6
BOILERPLATE_LSH_THRESHOLD = 0.35
# A template under three unrelated prompts is a pattern, not a coincidence; fewer is normal reuse.
BOILERPLATE_MIN_PROMPTS = 3
# Prompts this alike (bigram Dice ≥ 0.8: "…（第4题）" / "…（第14题）") are one prompt asked twice, where the
# same reject is expected; prompts that merely share an instruction template stay unrelated.
SAME_PROMPT_MIN_SIMILARITY = 0.8
# Short rejects ("是", "不知道", "A") legitimately recur across prompts: a residual needs this many
# tokens (CJK characters or words) to count as recurring content.
BOILERPLATE_MIN_TOKENS = 8
# A member of a recurring template that carries this much of its own prompt's specifics — content
# found in its prompt but not shared by most of the template's members (an order number counts 2,
# "蓝牙耳机" 3) — is a filled-in template reply to that prompt, not boilerplate.
BOILERPLATE_MIN_FILL = 2
# A unit in at least this share of a cluster's rejects is part of the template, not a fill.
TEMPLATE_MIN_SHARE = 0.5
# truncated (no end of sentence): a reject this long that ends on a letter while the chosen ends a
# sentence, whose last sentence has run this long without ending, is cut off; shorter ones are
# list-like answers ("苹果、香蕉") or labels ("类别：物流查询") that end without punctuation.
TRUNCATED_MIN_CHARS = 12
TRUNCATED_MIN_FRAGMENT = 8
# likely_swapped: the reject is ≥ 1.5× as long and has ≥ 1.3× (and ≥ 5 more) distinct content n-grams …
SWAPPED_MIN_LENGTH_RATIO = 1.5
SWAPPED_MIN_RICHNESS_RATIO = 1.3
SWAPPED_MIN_EXTRA_GRAMS = 5
# … and it covers at least half of the chosen answer's content: the fuller answer contains the thinner
# one. A vague reject that only echoes the prompt ("关于水果，这个问题比较复杂…") is longer, not richer.
SWAPPED_MIN_CHOSEN_COVERAGE = 0.5
# When the reject contains the whole chosen answer word for word, a smaller surplus is enough: the
# chosen is the reject with its end missing ("…选项。" vs "…选项。类别：发票开具").
SWAPPED_CONTAINED_MIN_LENGTH_RATIO = 1.15
SWAPPED_CONTAINED_MIN_EXTRA = 2
# The job report calls the batch "mostly off-topic" (or "mostly echoes") above half of the rejects.
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
# Likely causes of rejects that repeat the prompt: the model continues the text instead of answering.
ECHO_CAUSES = (
    "模型把 prompt 当成要续写的文本，而不是要回答的问题：可能加载的是没有经过 SFT 的预训练模型，或 SFT 训练不充分。",
    "prompt 格式与训练时不一致：例如训练时用 “{prompt}[EOS]” 而生成时没有 [EOS]，或聊天模板（system / user 角色）不同。"
    "请核对下面的 prompt 模板。",
    "多模态 prompt 中的图片没有被模型收到（<image> 占位符与图片不匹配），模型只能复述文字部分。",
    "max_tokens 太小或 stop 序列设置不当，回答刚开始就被截断。",
)

# --------------------------------------------------------------------------- text features
_CJK = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"  # CJK, kana, hangul
)
_RUN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)
# Control tokens a generation can consist of ("[EOS]", "</s>", "<|im_end|>") and the image placeholder:
# markup, not content.
_SPECIAL_TOKEN = re.compile(
    r"\[(?:EOS|BOS|PAD|SEP|CLS|UNK|MASK)\]|</?s>|<\|[a-z0-9_]+\|>|<(?:pad|unk|eos|bos|image)>", re.IGNORECASE
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•·]|\d+[.、)）]|[（(]\d+[)）]|[一二三四五六七八九十]+、)\s*", re.MULTILINE)
_INLINE_ITEM_SEP = re.compile(r"[、;；]")
_PUNCTUATION = re.compile(r"[^\w\s]|_", re.UNICODE)
_SENTENCE_END = re.compile(r"[。！？!?\n]|\.(?:\s|$)")
# A prompt's instruction ends at its first colon or line break ("改正下面句子中的错别字：…").
_INSTRUCTION_END = re.compile(r"[：:\n]")

# Function words that appear in any answer and say nothing about its topic.
_STOP_WORDS = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been it this that these "
    "those i you he she we they my your its our their me him her them do does did not no yes so if then "
    "there here what which who how why when can could would should will may might just also very "
    "it's i'm don't can't".split()
)
_STOP_BIGRAMS = frozenset(
    "一个 一些 我们 你们 他们 可以 这个 那个 这些 那些 因为 所以 如果 但是 而且 以及 进行 需要 可能 "
    "没有 什么 就是 还是 或者 已经 非常 不是 的是 是一 了一 是的 有的 之一 我的 你的 他的 它的 "
    # Instruction words of prompts ("请介绍一下…", "解释…") name the task, not the topic.
    "请介 介绍 绍一 一下 请问 请解 解释 说明 请列 列出 回答 描述 简单 详细 告诉 帮我 给出 请给".split()
)
# Characters too common to say anything about a topic (the character-level relevance ignores them).
_STOP_CHARS = frozenset(
    "的了是在和有我你他她它们这那就也都而及与或一个不人为上下中之以到说要会可对把被让给从向很还没吗呢吧啊哦嗯么"
    "什怎哪谁几样些每各其此该并且又再将已才只得着过如何"
)
# Around a one-character noun: the start or a conjunction before it; a particle, conjunction or verb after.
_WORD_BEFORE = frozenset(["", "和", "与", "或", "跟", "及"])
_WORD_AFTER = frozenset(["", "的", "和", "与", "或", "跟", "及", "是", "在", "有", "会", "能", "要", "为"])
_TERMINAL = set("。！？!?.…」』”\"')）】]》>~～")
_MID_SENTENCE = set("，、,:：（(“‘《【[-—")
_ELLIPSIS = ("...", "…", "。。。")


# A pair's texts are analysed by several checks, and a prompt recurs with every candidate of it:
# the text features are cached (by text) so each is computed once.
_CACHE = 4096


@lru_cache(maxsize=_CACHE)
def normalize(text: str) -> str:
    """NFKC, lower case, whitespace collapsed: the form texts are compared in."""
    return " ".join(unicodedata.normalize("NFKC", text or "").lower().split())


def strip_markup(text: str) -> str:
    """The text without control tokens ("[EOS]", "</s>", "<|im_end|>") and image placeholders."""
    return _SPECIAL_TOKEN.sub(" ", text or "")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """A crude English stem: "eggs"/"egg", "damaged"/"damage", "studying"/"studies"/"study", "boiling"/"boil"."""
    if word.isdigit() or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("ed") and len(word) > 4:
        word = word[:-2]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


# Words that open an answer without saying anything ("Sure! …", "好的，…") and the labels of a leaked chat
# template ("问题：…\n回答：", "Question: … Answer:"): not content, even for echo.
_FILLER_PATTERN = re.compile(
    r"\b(?:sure|ok|okay|certainly|well)\b|好的|当然|嗯嗯"
    r"|(?:^|\n)\s*(?:q|a|question|answer|user|assistant|问|答|问题|回答|答案|用户|助手)\s*[:：]",
    re.IGNORECASE,
)
# A prompt's head that names a speaker ("客户：…", "Customer: …") is not an instruction.
_SPEAKER_TAGS = frozenset(
    _stem(word) for word in "user customer guest human assistant client 用户 客户 顾客 买家 游客 问".split()
)


@lru_cache(maxsize=_CACHE)
def _runs(text: str) -> tuple[str, ...]:
    return tuple(_RUN.findall(normalize(strip_markup(text))))


def content_grams(text: str, *, keep_stop_words: bool = False) -> frozenset[str]:
    """Distinct content n-grams: character bigrams inside CJK runs, (crudely stemmed) words in Latin runs.

    Function words are dropped unless `keep_stop_words` (prompt similarity: "列出…" prompts are alike).
    """
    return _content_grams(text or "", keep_stop_words)


@lru_cache(maxsize=_CACHE)
def _content_grams(text: str, keep_stop_words: bool) -> frozenset[str]:
    grams: set[str] = set()
    for run in _runs(text):
        if _CJK_RUN.match(run):
            if len(run) == 1:
                grams.add(run)
            else:
                grams.update(run[i : i + 2] for i in range(len(run) - 1))
        elif (keep_stop_words or run not in _STOP_WORDS) and (len(run) > 1 or run.isdigit()):
            grams.add(_stem(run))
    return frozenset(grams if keep_stop_words else grams - _STOP_BIGRAMS)


def single_char_words(text: str) -> set[str]:
    """CJK characters standing alone between function characters or punctuation: "水" in "水的化学式是什么".

    Chinese names many topics with one character (水, 猫, 茶); bigrams alone would miss them.
    """
    words = set()
    for run in _runs(text):
        if _CJK_RUN.match(run):
            for i, ch in enumerate(run):
                before = run[i - 1] if i else ""
                after = run[i + 1] if i + 1 < len(run) else ""
                # "怎么办" ends on a character after function characters, but "办" is no topic: only the
                # places nouns stand ("水的…", "猫和狗") count.
                if ch not in _STOP_CHARS and before in _WORD_BEFORE and after in _WORD_AFTER:
                    words.add(ch)
    return words


def prompt_mentions(prompt: str, text: str) -> set[str]:
    """The prompt's content bigrams, words and one-character words that the text mentions."""
    mentioned = content_grams(prompt) & content_grams(text)
    cjk = "".join(run for run in _runs(text) if _CJK_RUN.match(run))
    return mentioned | {ch for ch in single_char_words(prompt) if ch in cjk}


@lru_cache(maxsize=_CACHE)
def content_chars(text: str) -> frozenset[str]:
    """Distinct content characters (CJK, without the commonest function characters) and content words."""
    units: set[str] = set()
    for run in _runs(text):
        if _CJK_RUN.match(run):
            units.update(ch for ch in run if ch not in _STOP_CHARS)
        elif run not in _STOP_WORDS and (len(run) > 1 or run.isdigit()):
            units.add(_stem(run))
    return frozenset(units)


def size(grams: Iterable[str]) -> int:
    """How much content a set of grams is, in units: a CJK bigram counts 1, a word 2."""
    return sum(1 if _CJK_RUN.match(g) else 2 for g in grams)


@lru_cache(maxsize=_CACHE)
def _skeleton(text: str) -> str:
    """Letters, digits and CJK, with every punctuation mark as "·" and trailing marks dropped.

    "苹果，香蕉" and "苹果、香蕉" are the same answer; "今天天气很好我们去爬山吧" and "今天天气很好，我们去爬山吧"
    differ by a mark, which counts on short texts.
    """
    compact = _PUNCTUATION.sub("·", normalize(strip_markup(text))).replace(" ", "")
    return re.sub(r"·+", "·", compact).strip("·")


def _bigram_counts(text: str) -> Counter:
    compact = _skeleton(text)
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
    """Overlap coefficient |a ∩ b| / min(|a|, |b|); None when either side is empty."""
    if not a or not b:
        return None
    return len(a & b) / min(len(a), len(b))


def containment(part: set[str], whole: set[str]) -> float | None:
    """The share of `part` found in `whole`; None when `part` is empty."""
    return len(part & whole) / len(part) if part else None


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


def split_instruction(prompt: str) -> tuple[str, str]:
    """(instruction, input) of a prompt like "改正下面句子中的错别字：我门明天…"; ("", prompt) when it has no input part.

    Both sides must have content, and a speaker tag ("客户：…", "Customer: …") is not an instruction.
    """
    match = _INSTRUCTION_END.search(prompt or "")
    if match:
        head, tail = prompt[: match.start()], prompt[match.end() :]
        head_grams = content_grams(head, keep_stop_words=True)
        if size(head_grams) >= 2 and not head_grams <= _SPEAKER_TAGS and size(content_grams(tail, keep_stop_words=True)) >= 4:
            return head, tail
    return "", prompt or ""


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


def _is_word_char(ch: str) -> bool:
    return bool(ch) and (ch.isalnum() or bool(_CJK_RUN.match(ch)))


def _truncation_signal(chosen: str, rejected: str, finish_reason: str | None) -> str | None:
    """Why the reject looks cut off, or None."""
    if finish_reason == "length":
        return "token_limit"
    text = strip_markup(rejected).rstrip()
    chosen_text = strip_markup(chosen).rstrip()
    if text.count("<think>") > text.count("</think>"):
        return "unclosed_think"
    if text.count("```") % 2:
        return "unclosed_code_block"
    if text.endswith(_ELLIPSIS) and not chosen_text.endswith(_ELLIPSIS):
        return "ellipsis"
    last = text[-1:]
    if last in _MID_SENTENCE:
        return "mid_sentence_punctuation"
    if not _is_word_char(last):
        return None
    # The chosen answer cut inside a word: everything up to the cut is the chosen's, which goes on.
    norm_reject, norm_chosen = normalize(text), normalize(chosen_text)
    if len(norm_reject) < len(norm_chosen) and norm_chosen.startswith(norm_reject) and _is_word_char(norm_chosen[len(norm_reject)]):
        return "cut_inside_chosen_text"
    fragment = _SENTENCE_END.split(text)[-1]
    if (
        len(text) >= TRUNCATED_MIN_CHARS
        and chosen_text[-1:] in _TERMINAL
        and size(content_grams(fragment, keep_stop_words=True)) >= TRUNCATED_MIN_FRAGMENT
        # "类别：物流查询" is a label, not an unfinished sentence.
        and not re.search(r"[：:]", fragment)
    ):
        return "no_sentence_end"
    return None


def _strip_fillers(text: str) -> str:
    return _FILLER_PATTERN.sub(" ", text)


def echo_share(prompt: str, text: str) -> tuple[float | None, int]:
    """How much of a text is copied from the prompt: (share of its content, content size), by length.

    Content is CJK characters other than function characters, and words other than function words
    (a word weighs 2); fillers ("好的", "Sure!") and chat-template labels ("问题：", "Q:") are left out.
    A character is copied when a bigram it is part of occurs in the prompt, a word when the prompt has
    it. Counted by length, so a prompt echoed twice weighs twice.
    """
    prompt_grams = content_grams(_strip_fillers(prompt), keep_stop_words=True)
    copied = total = 0
    for run in _runs(_strip_fillers(text)):
        if _CJK_RUN.match(run):
            for i, ch in enumerate(run):
                if ch in _STOP_CHARS:
                    continue
                total += 1
                copied += run[max(i - 1, 0) : i + 1] in prompt_grams or run[i : i + 2] in prompt_grams
        elif run not in _STOP_WORDS and (len(run) > 1 or run.isdigit()):
            total += 2
            copied += 2 * (_stem(run) in prompt_grams)
    return (copied / total if total else None), total


def _compact(text: str) -> str:
    return "".join(_runs(_strip_fillers(text)))


def _is_echo(prompt: str, chosen: str, rejected: str, metrics: dict[str, Any]) -> bool:
    copy, rejected_size = echo_share(prompt, rejected)
    piece = _compact(rejected)
    # A contiguous piece of the prompt, even one cut mid-word ("What should I pack for a thr"), is all copy.
    contiguous = bool(piece) and piece in _compact(prompt)
    if contiguous:
        copy = 1.0
    metrics["prompt_copy"] = _round(copy)
    if copy is None or copy < ECHO_MIN_COPY:
        return False
    # Short rejects made of the prompt's words are often answers ("15% of 80 is 15", "情绪：负面", an option
    # the prompt lists); at that size only the prompt's own beginning copied back is an echo.
    if rejected_size < ECHO_MIN_SIZE and not (
        _compact(prompt).startswith(piece) and len(_tokens(_strip_fillers(rejected))) >= ECHO_MIN_PIECE
    ):
        return False
    # The chosen answer's beginning (which may restate the prompt) cut off is a truncated answer.
    if piece and _compact(chosen).startswith(piece):
        return False
    instruction, task_input = split_instruction(prompt)
    if instruction:
        only_instruction = content_grams(instruction, keep_stop_words=True) - content_grams(task_input, keep_stop_words=True)
        copied = size(content_grams(rejected, keep_stop_words=True) & only_instruction)
        metrics["instruction_copy"] = copied
        return copied >= ECHO_MIN_INSTRUCTION_COPY
    chosen_copy, _ = echo_share(prompt, chosen)
    metrics["chosen_prompt_copy"] = _round(chosen_copy)
    return chosen_copy is None or copy - chosen_copy >= ECHO_MIN_MARGIN


def check_pair(prompt: str, chosen: str, rejected: str, *, finish_reason: str | None = None) -> PairResult:
    """Run the per-pair checks (all but `boilerplate`, which needs the batch).

    `finish_reason` is the model's, when the reject was generated ("length" = cut at max_tokens).
    """
    result = PairResult()
    issues, metrics = result.issues, result.metrics
    chosen_answer, rejected_answer = strip_reasoning(chosen), strip_reasoning(rejected)
    metrics["chosen_chars"] = len(chosen.strip())
    metrics["rejected_chars"] = len(rejected.strip())

    signal = _truncation_signal(chosen, rejected, finish_reason)
    empty_sides = [
        side for side, text in (("rejected", rejected_answer), ("chosen", chosen_answer)) if not _RUN.search(strip_markup(text))
    ]
    if empty_sides:
        # Nothing else can be judged on an empty side. A reject that is all unfinished reasoning was
        # cut off before it reached its answer: that is the finding, not emptiness.
        if empty_sides == ["rejected"] and signal == "unclosed_think":
            metrics["truncation"] = signal
            issues.append("truncated")
        else:
            metrics["empty_side"] = empty_sides
            issues.append("empty")
        return result

    metrics["similarity"] = _round(similarity(chosen_answer, rejected_answer))
    identical = _skeleton(chosen_answer) == _skeleton(rejected_answer) or metrics["similarity"] >= IDENTICAL_MIN_SIMILARITY
    if identical:
        issues.append("identical")

    prompt_grams, chosen_grams, rejected_grams = (
        content_grams(prompt),
        content_grams(chosen_answer),
        content_grams(rejected_answer),
    )
    rejected_size = size(rejected_grams)
    relevance = containment(rejected_grams, prompt_grams | chosen_grams)
    char_relevance = containment(content_chars(rejected_answer), content_chars(prompt) | content_chars(chosen_answer))
    metrics.update(
        relevance=_round(relevance),
        char_relevance=_round(char_relevance),
        rejected_size=rejected_size,
        rejected_prompt_overlap=_round(containment(rejected_grams, prompt_grams)),
        rejected_chosen_overlap=_round(containment(rejected_grams, chosen_grams)),
        chosen_relevance=_round(containment(chosen_grams, prompt_grams)),
    )

    echo = not identical and _is_echo(prompt, chosen_answer, rejected_answer, metrics)
    if echo:
        issues.append("echo")

    mentions = prompt_mentions(prompt, rejected_answer)
    metrics["prompt_mentions"] = len(mentions)
    off_topic = (
        not identical
        and not echo
        and rejected_size >= OFF_TOPIC_MIN_SIZE
        and len(mentions) <= OFF_TOPIC_MAX_PROMPT_MENTIONS
        and relevance is not None
        and relevance < OFF_TOPIC_MAX_RELEVANCE
        and (char_relevance or 0) < OFF_TOPIC_MAX_CHAR_RELEVANCE
    )
    if off_topic:
        issues.append("off_topic")

    # A near-copy of the chosen answer that only lost its final full stop is not cut off.
    if signal and not (identical and signal == "no_sentence_end"):
        metrics["truncation"] = signal
        issues.append("truncated")

    length_ratio = len(rejected_answer) / max(len(chosen_answer), 1)
    richness_ratio = len(rejected_grams) / max(len(chosen_grams), 1)
    chosen_coverage = len(chosen_grams & rejected_grams) / len(chosen_grams) if chosen_grams else 0.0
    contained = bool(_skeleton(chosen_answer)) and _skeleton(chosen_answer) in _skeleton(rejected_answer)
    metrics.update(
        length_ratio=_round(length_ratio),
        richness_ratio=_round(richness_ratio),
        chosen_coverage=_round(chosen_coverage),
        chosen_list_items=list_item_count(chosen_answer),
        rejected_list_items=list_item_count(rejected_answer),
    )
    extra = size(rejected_grams - chosen_grams)
    swapped_contained = (
        contained and length_ratio >= SWAPPED_CONTAINED_MIN_LENGTH_RATIO and extra >= SWAPPED_CONTAINED_MIN_EXTRA
    )
    swapped_richer = (
        length_ratio >= SWAPPED_MIN_LENGTH_RATIO
        and richness_ratio >= SWAPPED_MIN_RICHNESS_RATIO
        and len(rejected_grams) - len(chosen_grams) >= SWAPPED_MIN_EXTRA_GRAMS
        and chosen_coverage >= SWAPPED_MIN_CHOSEN_COVERAGE
    )
    if not (off_topic or identical or echo) and (swapped_contained or swapped_richer):
        issues.append("likely_swapped")
    return result


# --------------------------------------------------------------------------- batch: boilerplate
@dataclass
class BoilerplateCluster:
    """Rejects that are one template: their positions in the batch and how many distinct prompts they answer.

    `members` are the boilerplate rejects; `filled` are rejects of the same template that carry their
    own prompt's specifics (a template reply, not boilerplate) and are not flagged.
    """

    members: list[int]
    prompts: int
    example: str
    filled: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"count": len(self.members), "prompts": self.prompts, "example": self.example[:300], "filled": len(self.filled)}


def _tokens(text: str) -> list[str]:
    """CJK characters one by one and Latin words (stemmed): what residuals are made of."""
    tokens: list[str] = []
    for run in _runs(text):
        if _CJK_RUN.match(run):
            tokens.extend(run)
        else:
            tokens.append(_stem(run))
    return tokens


def residual(prompt_grams: set[str], text: str) -> list[str | None]:
    """The text's tokens with those its prompt explains replaced by None.

    A CJK character is explained when a bigram it is part of occurs in the prompt; a word when the
    prompt has it. What is left is what the reject says beyond its prompt.
    """
    left: list[str | None] = []
    for run in _runs(text):
        if _CJK_RUN.match(run):
            explained = [False] * len(run)
            for i in range(len(run) - 1):
                if run[i : i + 2] in prompt_grams:
                    explained[i] = explained[i + 1] = True
            left.extend(None if e else ch for ch, e in zip(run, explained))
        else:
            word = _stem(run)
            left.append(None if word in prompt_grams and (len(run) > 1 or run.isdigit()) else word)
    return left


def _shingles(tokens: list[str | None]) -> set[str]:
    """Token trigrams that do not cross a removed (explained) stretch."""
    shingles = set()
    for i in range(len(tokens) - 2):
        window = tokens[i : i + 3]
        if None not in window:
            shingles.add("\x1f".join(window))  # type: ignore[arg-type]
    return shingles


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _same_content(a: set[str], b: set[str]) -> bool:
    if _jaccard(a, b) >= BOILERPLATE_MIN_SIMILARITY:
        return True
    smaller = min(len(a), len(b))
    return smaller >= BOILERPLATE_MIN_TOKENS and len(a & b) / smaller >= BOILERPLATE_MIN_CONTAINMENT


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


def _fill_size(units: set[str], prompt_units: set[str], template: set[str]) -> int:
    """How much of its own prompt's specifics a reject carries: prompt content that is not template.

    An order number or other id (≥ 4 letters/digits) counts 2, like a word.
    """
    return size((units & prompt_units) - template)


def _split_filled(members: list[int], prompts: Sequence[str], rejects: Sequence[str]) -> tuple[list[int], list[int]]:
    """(boilerplate members, filled-in template replies) of one cluster of near-same residuals."""
    units = {m: content_grams(strip_reasoning(rejects[m]), keep_stop_words=True) for m in members}
    counts = Counter(u for m in members for u in units[m])
    template = {u for u, n in counts.items() if n >= TEMPLATE_MIN_SHARE * len(members)} if len(members) > 1 else set()
    boilerplate, filled = [], []
    for m in members:
        prompt_units = content_grams(prompts[m], keep_stop_words=True)
        (filled if _fill_size(units[m], prompt_units, template) >= BOILERPLATE_MIN_FILL else boilerplate).append(m)
    return boilerplate, filled


def find_boilerplate(prompts: Sequence[str], rejects: Sequence[str]) -> list[BoilerplateCluster]:
    """Groups of rejects with the same content under ≥ BOILERPLATE_MIN_PROMPTS unrelated prompts.

    Recurrence is judged on each reject's residual — what is left after removing what its own prompt
    explains — so "订单 123 的耳机…" and "订单 456 的台灯…" are one template. Within a template, a reject
    that still carries its own prompt's specifics (order number, product) is a filled-in reply to that
    prompt and is not boilerplate; boilerplate is the same content whatever the prompt.

    Exact duplicates are grouped first; distinct residuals are then joined through MinHash-LSH
    candidates verified by exact Jaccard, so the cost stays near-linear in the batch size.
    """
    from datasketch import MinHash, MinHashLSH

    by_residual: dict[tuple, list[int]] = {}
    for index, reject in enumerate(rejects):
        left = residual(content_grams(prompts[index]), strip_reasoning(reject))
        if sum(token is not None for token in left) >= BOILERPLATE_MIN_TOKENS:
            by_residual.setdefault(tuple(left), []).append(index)
    keys = list(by_residual)
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if len(keys) > 1:
        shingles = [_shingles(list(k)) for k in keys]
        # Candidates from a lower LSH threshold, then verified exactly: at 0.5 itself LSH misses about one
        # pair in six around Jaccard 0.6 (a template with and without its closing sentence).
        lsh = MinHashLSH(threshold=BOILERPLATE_LSH_THRESHOLD, num_perm=64)
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
                if j > i and find(i) != find(j) and _same_content(shingles[i], shingles[j]):
                    parent[find(j)] = find(i)

    groups: dict[int, list[int]] = {}
    for i in range(len(keys)):
        groups.setdefault(find(i), []).append(i)
    clusters = []
    for key_ids in groups.values():
        members = sorted(m for k in key_ids for m in by_residual[keys[k]])
        if _unrelated_prompts(prompts[m] for m in members) < BOILERPLATE_MIN_PROMPTS:
            continue
        boilerplate, filled = _split_filled(members, prompts, rejects)
        if _unrelated_prompts(prompts[m] for m in boilerplate) >= BOILERPLATE_MIN_PROMPTS:
            # The most frequent text is the clearest example of the template.
            example = Counter(normalize(rejects[m]) for m in boilerplate).most_common(1)[0][0]
            first = next(m for m in boilerplate if normalize(rejects[m]) == example)
            distinct_prompts = len({normalize(prompts[m]) for m in boilerplate})
            clusters.append(BoilerplateCluster(boilerplate, distinct_prompts, rejects[first], filled))
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
    "boilerplate_clusters", "off_topic_share", "mostly_off_topic", "echo_share", "mostly_echo",
    "diagnosis": {"headline", "causes"}|None}.
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
    echo = counts.get("echo", 0)
    off_topic_share = round(off_topic / total, 3) if total else 0.0
    echo_share = round(echo / total, 3) if total else 0.0
    mostly_off_topic = total > 0 and off_topic / total > MOSTLY_OFF_TOPIC_SHARE
    mostly_echo = total > 0 and echo / total > MOSTLY_OFF_TOPIC_SHARE
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
    elif mostly_echo:
        diagnosis = {
            "headline": (
                f"大多数 reject 只是在复述 prompt：{echo} / {total} 条（{echo_share:.0%}）的内容大部分是 prompt 的原文。"
                "模型没有在回答问题，这样的 reject 教不了模型什么是“较差的回答”。"
            ),
            "causes": list(ECHO_CAUSES),
        }
    return {
        "total": total,
        "clean": sum(1 for issues in issue_lists if not issues),
        "issues": ranked,
        "boilerplate_clusters": cluster_dicts[:10],
        "off_topic_share": off_topic_share,
        "mostly_off_topic": mostly_off_topic,
        "echo_share": echo_share,
        "mostly_echo": mostly_echo,
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
