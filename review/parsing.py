"""Reading the predicted class out of a model's reasoning, and measuring its length.

The prompts ask for a final line like `类别：商品分类选项`, but models vary the wording, the colon,
brackets and spacing, and sometimes shorten a name (the team's own class folders dropped
parenthesised parts). We accept those variations and return None instead of guessing.
"""
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from django.conf import settings

# Cue words that introduce the answer, most specific first.
_ANSWER_CUES = ("最终类别", "预测类别", "分类结果", "图片类别", "场景类别", "所属类别", "类别", "分类", "答案", "结论")
_CUE_PATTERN = re.compile(
    r"(?:" + "|".join(_ANSWER_CUES) + r")\s*(?:为|是)?\s*[:：]\s*[「『【\[《\"“']?\s*([^\n」』】\]》\"”'。；;，,]+)"
)
_BRACKETED = re.compile(r"[（(][^）)]*[）)]")


@lru_cache(maxsize=8192)
def normalize_name(name: str) -> str:
    """Compare class names ignoring width, case, spaces, punctuation and parenthesised parts."""
    name = unicodedata.normalize("NFKC", name)
    name = _BRACKETED.sub("", name)
    return _NOT_NAME.sub("", name).lower()


_NOT_NAME = re.compile(r"[\s\W_]+")


@lru_cache(maxsize=64)
def _by_normalized(names: tuple[str, ...]) -> dict[str, str]:
    """The names keyed by their normalised form, built once per set of names (an import asks for
    every one of its hundreds of thousands of answers)."""
    return {normalize_name(n): n for n in names}


def match_category_name(candidate: str, names: Sequence[str]) -> str | None:
    """The one name in `names` that `candidate` denotes, or None if none or several do."""
    wanted = normalize_name(candidate)
    if not wanted:
        return None
    by_norm = _by_normalized(tuple(names))
    if wanted in by_norm:
        return by_norm[wanted]
    # A shortened or extended name ("分类选项", "物流查询类"): accept only an unambiguous one, and
    # only when the shortened form keeps at least half of the name.
    hits = {
        n
        for norm, n in by_norm.items()
        if norm and (norm in wanted or (wanted in norm and len(wanted) >= max(2, len(norm) / 2)))
    }
    return hits.pop() if len(hits) == 1 else None

def parse_predicted_category(output: str, names: Sequence[str]) -> str | None:
    """The category named as the answer in `output`, or None when it is missing or ambiguous."""
    if not output:
        return None
    matches = _CUE_PATTERN.findall(output)
    for candidate in reversed(matches):  # the last stated answer is the final one
        found = match_category_name(candidate, names)
        if found:
            return found
    # No cue: accept a last line that is exactly a class name.
    last_line = output.strip().splitlines()[-1] if output.strip() else ""
    if len(normalize_name(last_line)) <= 20:
        return match_category_name(last_line, names)
    return None


def text_length(text: str) -> int:
    """Length of an output as the team counts it (字数: characters, whitespace excluded).

    When LENGTH_TOKENIZER names a callable ("module:function" returning a token list), tokens are
    counted instead.
    """
    spec = settings.LENGTH_TOKENIZER
    if spec:
        module_name, _, func_name = spec.partition(":")
        import importlib

        return len(getattr(importlib.import_module(module_name), func_name)(text))
    return len("".join(text.split()))  # str.split() splits on exactly what str.isspace() calls whitespace
