"""Text features the pair checks are computed on: normalised text, content n-grams (CJK character
bigrams, Latin words), content characters, sizes in units and similarities. Lexical and offline."""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

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


def _tokens(text: str) -> list[str]:
    """CJK characters one by one and Latin words (stemmed): what residuals are made of."""
    tokens: list[str] = []
    for run in _runs(text):
        if _CJK_RUN.match(run):
            tokens.extend(run)
        else:
            tokens.append(_stem(run))
    return tokens
