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

Modules: `issues` (names, labels, every threshold with the reason for its value), `text` (the text
features), `pair` (`check_pair`, the per-pair checks), `boilerplate` (`find_boilerplate`, the batch
check), `report` (`check_pairs` runs both; `batch_report` ranks the issues and, when most rejects are
off-topic or echoes, says so with the likely causes), `files` (reading pair files). The names
imported here are the checks' public interface.
"""
from .boilerplate import (
    BoilerplateCluster,
    apply_boilerplate,
    find_boilerplate,
)
from .files import (
    PairLine,
    load_pair_file,
    message_text,
    pair_from_record,
    read_pair_file,
)
from .issues import (
    ISSUE_NAMES,
    ISSUE_LABELS,
    CHECK_TITLES,
    IDENTICAL_MIN_SIMILARITY,
    OFF_TOPIC_MAX_RELEVANCE,
    OFF_TOPIC_MAX_CHAR_RELEVANCE,
    OFF_TOPIC_MAX_PROMPT_MENTIONS,
    OFF_TOPIC_MIN_SIZE,
    ECHO_MIN_COPY,
    ECHO_MIN_SIZE,
    ECHO_MIN_PIECE,
    ECHO_MIN_INSTRUCTION_COPY,
    ECHO_MIN_MARGIN,
    BOILERPLATE_MIN_SIMILARITY,
    BOILERPLATE_MIN_CONTAINMENT,
    BOILERPLATE_LSH_THRESHOLD,
    BOILERPLATE_MIN_PROMPTS,
    SAME_PROMPT_MIN_SIMILARITY,
    BOILERPLATE_MIN_TOKENS,
    BOILERPLATE_MIN_FILL,
    TEMPLATE_MIN_SHARE,
    TRUNCATED_MIN_CHARS,
    TRUNCATED_MIN_FRAGMENT,
    SWAPPED_MIN_LENGTH_RATIO,
    SWAPPED_MIN_RICHNESS_RATIO,
    SWAPPED_MIN_EXTRA_GRAMS,
    SWAPPED_MIN_CHOSEN_COVERAGE,
    SWAPPED_CONTAINED_MIN_LENGTH_RATIO,
    SWAPPED_CONTAINED_MIN_EXTRA,
    MOSTLY_OFF_TOPIC_SHARE,
    OFF_TOPIC_CAUSES,
    ECHO_CAUSES,
)
from .pair import (
    PairResult,
    check_pair,
    echo_share,
)
from .report import (
    batch_report,
    check_pairs,
    format_report,
)
from .text import (
    containment,
    content_chars,
    content_grams,
    list_item_count,
    normalize,
    overlap,
    prompt_mentions,
    similarity,
    single_char_words,
    size,
    split_instruction,
    strip_markup,
    strip_reasoning,
)

__all__ = [
    "BoilerplateCluster",
    "apply_boilerplate",
    "find_boilerplate",
    "PairLine",
    "load_pair_file",
    "message_text",
    "pair_from_record",
    "read_pair_file",
    "ISSUE_NAMES",
    "ISSUE_LABELS",
    "CHECK_TITLES",
    "IDENTICAL_MIN_SIMILARITY",
    "OFF_TOPIC_MAX_RELEVANCE",
    "OFF_TOPIC_MAX_CHAR_RELEVANCE",
    "OFF_TOPIC_MAX_PROMPT_MENTIONS",
    "OFF_TOPIC_MIN_SIZE",
    "ECHO_MIN_COPY",
    "ECHO_MIN_SIZE",
    "ECHO_MIN_PIECE",
    "ECHO_MIN_INSTRUCTION_COPY",
    "ECHO_MIN_MARGIN",
    "BOILERPLATE_MIN_SIMILARITY",
    "BOILERPLATE_MIN_CONTAINMENT",
    "BOILERPLATE_LSH_THRESHOLD",
    "BOILERPLATE_MIN_PROMPTS",
    "SAME_PROMPT_MIN_SIMILARITY",
    "BOILERPLATE_MIN_TOKENS",
    "BOILERPLATE_MIN_FILL",
    "TEMPLATE_MIN_SHARE",
    "TRUNCATED_MIN_CHARS",
    "TRUNCATED_MIN_FRAGMENT",
    "SWAPPED_MIN_LENGTH_RATIO",
    "SWAPPED_MIN_RICHNESS_RATIO",
    "SWAPPED_MIN_EXTRA_GRAMS",
    "SWAPPED_MIN_CHOSEN_COVERAGE",
    "SWAPPED_CONTAINED_MIN_LENGTH_RATIO",
    "SWAPPED_CONTAINED_MIN_EXTRA",
    "MOSTLY_OFF_TOPIC_SHARE",
    "OFF_TOPIC_CAUSES",
    "ECHO_CAUSES",
    "PairResult",
    "check_pair",
    "echo_share",
    "batch_report",
    "check_pairs",
    "format_report",
    "containment",
    "content_chars",
    "content_grams",
    "list_item_count",
    "normalize",
    "overlap",
    "prompt_mentions",
    "similarity",
    "single_char_words",
    "size",
    "split_instruction",
    "strip_markup",
    "strip_reasoning",
]
