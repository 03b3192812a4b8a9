"""How strongly the evidence says a sample's dataset label is wrong: a score, its reasons, a ranking.

The evidence is what the product already has about a sample; each piece is a *witness* naming one
class, with a weight:

- the model's answer in mode 1 (free reasoning), mode 2 (given the definitions) and mode 3 (given
  the definitions, ≤ TRAINSET_MAX_LENGTH 字): weight 1 each — the class its answer line names;
- the image information (the team's picture2text description and the structured `image_info`):
  weight 2 — the class whose definition it matches best (below). It describes what the image
  shows without choosing a class, so it does not share the classifier's confusions; that is why
  it counts double.

Where the endpoint returned token log-probabilities for an answer (`raw_response`), a mode's weight
is multiplied by the probability the model gave the class name it wrote (the product of its
tokens' probabilities): a hesitant answer counts less, for the label as against it.

    score = max(0, max over classes c ≠ label of (weight naming c) − (weight naming the label)) / 5

5 is the weight of all witnesses together, so the score is the net share of the evidence for the
most-named other class: 1.0 when all of it names one other class, 0 when the label holds at least
as much as any other class. A sample missing evidence (no image information, an unparseable
answer) can reach less. The sample is *suspected* at LABEL_SUSPICION_THRESHOLD (0.4 — e.g. two
modes naming one other class and nothing for the label, or the image information alone against
the label with the modes split). The class with the most weight is the suggestion.

Matching the image information with a definition: both are cut into overlapping two-character
pieces (CJK has no spaces); a piece found in many definitions says little, so each counts
log(number of classes / classes whose definition has it). The match of class c is the counted share
of c's name + definition found in the image information. The best-matching class is the
witness's class, unless another class matches about as well (within 10 %): then the image
information is left out, as it does not tell them apart.

Scores are stored (`LabelSuspicion`, and the score and its sort key on the sample for the queue) and
recomputed by `suspicions_refresh` whenever something that can change the evidence is written; only
samples whose evidence changed (label, outputs, image information, definitions, this formula's
version: the fingerprint) are recomputed. Samples an import creates are scored from the answers in
hand and stored under the same fingerprint (`suspicions_store_created`).
"""
from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, FilteredRelation, Q, QuerySet
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from core.bulk import insert_values, update_rows

from .models import Category, LabelSuspicion, Mode, Reasoning, Sample

# Bump when the formula changes: every stored score is then recomputed on the next refresh.
# 2: image_info's values are read in key order (PostgreSQL's jsonb reorders keys; read as written,
# the same sample scored differently there than in memory or on SQLite).
FORMULA_VERSION = "2"
MODE_WEIGHT = 1.0
INFO_WEIGHT = 2.0
# The image information names its best-matching class only when that match is at least this many
# times the next best one's.
INFO_CLEAR_LEAD = 1.1
TOTAL_WEIGHT = 3 * MODE_WEIGHT + INFO_WEIGHT
MODE_SOURCES = {Mode.FREE: "mode1", Mode.WITH_DEFINITIONS: "mode2", Mode.LIMITED: "mode3"}
SOURCE_LABELS = {"mode1": "模式1（自由推理）", "mode2": "模式2（给出定义）", "mode3": "模式3（给出定义、限字数）",
                 "info": "图片信息"}
REFRESH_CHUNK = 500


def threshold() -> float:
    """The score from which a sample is suspected (LABEL_SUSPICION_THRESHOLD), read live."""
    return float(settings.LABEL_SUSPICION_THRESHOLD)


# --------------------------------------------------------------------------- witnesses
@dataclass
class Witness:
    """One piece of evidence: `source` names `category_id` with `weight` (base × confidence)."""

    source: str
    category_id: int
    category_name: str
    weight: float
    # The probability of the class name from log-probabilities (modes), or the definition match
    # share (image information); None when there is none.
    confidence: float | None = None
    # For the image information: the label's own match share, to show beside the best one.
    label_match: float | None = None

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS.get(self.source, self.source)

    def as_json(self) -> dict[str, Any]:
        """The stored form (`LabelSuspicion.evidence`); `dataclasses.asdict`'s deep copies of these
        plain fields were a tenth of an import's time."""
        return {"source": self.source, "category_id": self.category_id, "category_name": self.category_name,
                "weight": self.weight, "confidence": self.confidence, "label_match": self.label_match}

    @property
    def detail(self) -> str:
        """The witness in words: what it names and how sure it is."""
        if self.source == "info" and self.confidence is not None:
            return (f"{self.source_label}最接近“{self.category_name}”的定义（重合 {self.confidence:.0%}，"
                    f"标签的定义 {(self.label_match or 0):.0%}）")
        text = f"{self.source_label}答：{self.category_name}"
        if self.confidence is not None:
            text += f"（类别名的概率 {self.confidence:.2f}）"
        return text


@dataclass
class Suspicion:
    """The score of one sample, the class the evidence points to, and the witnesses."""

    score: float
    suggested_id: int | None
    suggested_name: str
    witnesses: list[Witness] = field(default_factory=list)
    label_weight: float = 0.0
    suggested_weight: float = 0.0

    @property
    def suspected(self) -> bool:
        return self.score >= threshold()


def suspicion_score(*, label_id: int, witnesses: Sequence[Witness]) -> Suspicion:
    """The formula (module docstring) over `witnesses`."""
    label_weight = sum(w.weight for w in witnesses if w.category_id == label_id)
    others: Counter[int] = Counter()
    names: dict[int, str] = {}
    for w in witnesses:
        if w.category_id != label_id:
            others[w.category_id] += w.weight
            names[w.category_id] = w.category_name
    if not others:
        return Suspicion(0.0, None, "", list(witnesses), label_weight, 0.0)
    # The most weight; ties go to the class named first (mode 1, 2, 3, then the image information).
    best = max(others, key=lambda c: (others[c], -[w.category_id for w in witnesses].index(c)))
    net = max(0.0, others[best] - label_weight)
    return Suspicion(round(net / TOTAL_WEIGHT, 4), best, names[best], list(witnesses), label_weight, others[best])


# --------------------------------------------------------------------------- log-probabilities
def _token_logprobs(raw: Any) -> list[dict] | None:
    """The per-token log-probabilities in a stored response: the OpenAI shape
    (`choices[0].logprobs.content`) or just that list under `logprobs`."""
    if not isinstance(raw, dict):
        return None
    tokens = raw.get("logprobs")
    if isinstance(tokens, dict):
        tokens = tokens.get("content")
    if tokens is None:
        choices = raw.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            logprobs = choices[0].get("logprobs")
            tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(tokens, list) or not tokens:
        return None
    if not all(isinstance(t, dict) and isinstance(t.get("token"), str)
               and isinstance(t.get("logprob"), (int, float)) for t in tokens):
        return None
    return tokens


def class_name_probability(raw: Any, class_name: str) -> float | None:
    """The probability the model gave the class name in its answer: the product of the
    probabilities of the tokens that spell its last occurrence. None without log-probabilities
    (or when the name is not spelled out in the tokens)."""
    tokens = _token_logprobs(raw)
    if not tokens or not class_name:
        return None
    text = "".join(t["token"] for t in tokens)
    start = text.rfind(class_name)
    if start < 0:
        return None
    end = start + len(class_name)
    total, position = 0.0, 0
    for token in tokens:
        token_start, position = position, position + len(token["token"])
        if position > start and token_start < end:
            total += float(token["logprob"])
    return max(0.0, min(1.0, math.exp(total)))


# --------------------------------------------------------------------------- image information
_NOT_TEXT = re.compile(r"[\s\W_\d]+")


def _pieces(text: str) -> set[str]:
    """Overlapping two-character pieces of the letters of `text` (punctuation, digits removed)."""
    letters = _NOT_TEXT.sub("", text or "")
    return {letters[i:i + 2] for i in range(len(letters) - 1)}


def info_text(*, description: str, image_info: Any) -> str:
    """The image information as one text: the description, then every value of `image_info`
    (its `_source` provenance left out), objects in the order of their keys — not as stored:
    PostgreSQL's jsonb keeps its own order, and the text must not depend on the database."""
    parts = [description or ""]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key in sorted(value):
                if key != "_source":
                    walk(value[key])
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif value is not None:
            parts.append(str(value))

    walk(image_info)
    return "\n".join(p for p in parts if p)


class DefinitionMatcher:
    """Matches image information with a dataset's class definitions (module docstring)."""

    def __init__(self, categories: Iterable[tuple[int, str, str]]):
        """`categories`: (id, name, effective definition) of every class of the dataset."""
        self.names: dict[int, str] = {}
        self.pieces: dict[int, set[str]] = {}
        for category_id, name, definition in categories:
            self.names[category_id] = name
            self.pieces[category_id] = _pieces(name) | _pieces(definition)
        counts = Counter(piece for pieces in self.pieces.values() for piece in pieces)
        n = len(self.pieces)
        self.weight = {piece: math.log(n / count) for piece, count in counts.items()}
        self.totals = {c: sum(self.weight[p] for p in pieces) for c, pieces in self.pieces.items()}
        # piece → the classes whose name or definition has it: a text visits only its own pieces'
        # classes (every sample of an import is matched against every class).
        self.classes_of: dict[str, list[int]] = {}
        for c, pieces in self.pieces.items():
            for piece in pieces:
                self.classes_of.setdefault(piece, []).append(c)

    def matches(self, text: str) -> dict[int, float]:
        """Per class, the weighted share of its name + definition found in `text` (0–1)."""
        found = dict.fromkeys(self.pieces, 0.0)
        classes_of, weight = self.classes_of, self.weight
        for piece in _pieces(text):
            for c in classes_of.get(piece, ()):
                found[c] += weight[piece]
        return {c: (found[c] / total) if total else 0.0 for c, total in self.totals.items()}

    def witness(self, text: str, *, label_id: int) -> Witness | None:
        """The image information's witness, or None when it matches no definition at all."""
        if not text.strip() or not self.pieces:
            return None
        shares = self.matches(text)
        best = max(shares, key=lambda c: (shares[c], c == label_id))
        if shares[best] <= 0:
            return None
        label_share = shares.get(label_id, 0.0)
        runner_up = max((share for c, share in shares.items() if c != best), default=0.0)
        if shares[best] < runner_up * INFO_CLEAR_LEAD:
            return None  # another class matches about as well: the information does not tell them apart
        return Witness("info", best, self.names[best], INFO_WEIGHT, round(shares[best], 4), round(label_share, 4))


# --------------------------------------------------------------------------- one sample
@dataclass
class Answer:
    """What a mode's stored answer says (a Reasoning's fields the score reads)."""

    mode: int
    predicted_category_id: int | None
    predicted_name: str
    raw_response: Any = None


def sample_suspicion(*, label_id: int, answers: Iterable[Answer], info: str, matcher: DefinitionMatcher) -> Suspicion:
    """The score of one sample from its answers and image information."""
    witnesses = []
    for answer in sorted(answers, key=lambda a: a.mode):
        if answer.mode not in MODE_SOURCES or answer.predicted_category_id is None:
            continue
        name = matcher.names.get(answer.predicted_category_id, answer.predicted_name)
        probability = class_name_probability(answer.raw_response, name)
        weight = MODE_WEIGHT * (probability if probability is not None else 1.0)
        witnesses.append(Witness(MODE_SOURCES[answer.mode], answer.predicted_category_id, name, round(weight, 4),
                                 None if probability is None else round(probability, 4)))
    info_witness = matcher.witness(info, label_id=label_id)
    if info_witness is not None:
        witnesses.append(info_witness)
    return suspicion_score(label_id=label_id, witnesses=witnesses)


# --------------------------------------------------------------------------- stored scores
def _definitions(dataset_id: int) -> list[tuple[int, str, str]]:
    return [(c.pk, c.name, c.effective_definition)
            for c in Category.objects.filter(dataset_id=dataset_id).order_by("position", "name", "pk")]


def _definitions_hash(definitions: Sequence[tuple[int, str, str]]) -> str:
    return hashlib.sha1(repr(list(definitions)).encode()).hexdigest()


def _with_modes(samples: QuerySet[Sample]) -> QuerySet[Sample]:
    relations = {f"s{mode}": FilteredRelation("reasonings", condition=Q(reasonings__mode=mode)) for mode in MODE_SOURCES}
    return samples.annotate(**relations)


def _fingerprint(definitions_hash: str, *, label_id: int, updated_at: datetime,
                 reasonings: Mapping[int, tuple[int, datetime]]) -> str:
    """What a stored score was computed from: the formula, the definitions, the sample's label and
    last change, and each mode's reasoning (mode → its id and last change)."""
    parts = [FORMULA_VERSION, definitions_hash, label_id, updated_at.isoformat()]
    for mode in MODE_SOURCES:
        reasoning_id, changed = reasonings.get(mode, (None, None))
        parts += [reasoning_id, changed and changed.isoformat()]
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()


def sort_key(score: float) -> int:
    """The ascending sort key of a score (`Sample.sort_suspicion`): most suspect first."""
    return -round(score * 10000)


def suspicions_refresh(*, samples: QuerySet[Sample] | None = None, sample_ids: Iterable[int] | None = None) -> int:
    """Recompute the stored suspicion (LabelSuspicion and `Sample.label_suspicion`) of those
    `samples` (or `sample_ids`) whose evidence changed, or that have none yet; returns how many
    were written. One light query (and one per dataset) when nothing changed.

    Called for every write that can change the evidence: with the rules' verdicts
    (`review.counts.samples_refresh`: re-imports, model outputs, saves), after image information is
    stored (`review.jobs.info_extraction`) and when a class's definition changes (the receiver below).
    Samples an import creates are scored as they are written (`suspicions_store_created`).
    """
    if samples is None:
        ids = sorted(set(sample_ids or ()))
        if not ids:
            return 0
        written = 0
        for start in range(0, len(ids), REFRESH_CHUNK):
            written += suspicions_refresh(samples=Sample.objects.filter(pk__in=ids[start:start + REFRESH_CHUNK]))
        return written
    columns = ["pk", "dataset_id", "label_id", "updated_at", "suspicion__fingerprint"]
    for mode in MODE_SOURCES:
        columns += [f"s{mode}__id", f"s{mode}__updated_at"]
    rows = list(_with_modes(samples.order_by()).values(*columns))
    definitions: dict[int, tuple[list, str]] = {}
    stale: dict[int, str] = {}
    for row in rows:
        if row["dataset_id"] not in definitions:
            defs = _definitions(row["dataset_id"])
            definitions[row["dataset_id"]] = (defs, _definitions_hash(defs))
        fingerprint = _fingerprint(definitions[row["dataset_id"]][1], label_id=row["label_id"],
                                   updated_at=row["updated_at"],
                                   reasonings={mode: (row[f"s{mode}__id"], row[f"s{mode}__updated_at"])
                                               for mode in MODE_SOURCES if row[f"s{mode}__id"] is not None})
        if fingerprint != row["suspicion__fingerprint"]:
            stale[row["pk"]] = fingerprint
    if not stale:
        return 0
    matchers = {dataset_id: DefinitionMatcher(defs) for dataset_id, (defs, _) in definitions.items()}
    ids = list(stale)
    written = 0
    # Each sample is read with its modes' answers, in one query (`_with_modes`: one row per sample).
    answer_columns = [f"s{mode}__{name}" for mode in MODE_SOURCES
                      for name in ("id", "predicted_category_id", "predicted_name", "raw_response")]
    for start in range(0, len(ids), REFRESH_CHUNK):
        chunk = ids[start:start + REFRESH_CHUNK]
        rows_out, scores = [], []
        for s in _with_modes(Sample.objects.filter(pk__in=chunk).order_by()).values(
                "pk", "dataset_id", "label_id", "description", "image_info", *answer_columns):
            answers = [Answer(mode, s[f"s{mode}__predicted_category_id"], s[f"s{mode}__predicted_name"],
                              s[f"s{mode}__raw_response"]) for mode in MODE_SOURCES if s[f"s{mode}__id"] is not None]
            result = sample_suspicion(label_id=s["label_id"], answers=answers,
                                      info=info_text(description=s["description"], image_info=s["image_info"]),
                                      matcher=matchers[s["dataset_id"]])
            rows_out.append(_suspicion_row(s["pk"], result, stale[s["pk"]]))
            scores.append((s["pk"], [result.score, sort_key(result.score)]))
        _store_suspicions(rows_out)
        # Only these two columns: `updated_at` is evidence (the fingerprint) and stays as it was.
        update_rows(Sample, ["label_suspicion", "sort_suspicion"], scores)
        written += len(rows_out)
    return written


def _suspicion_row(sample_id: int, result: Suspicion, fingerprint: str) -> dict[str, Any]:
    return {"sample_id": sample_id, "score": result.score, "suggested_category_id": result.suggested_id,
            "evidence": [w.as_json() for w in result.witnesses], "fingerprint": fingerprint}


def _store_suspicions(rows: list[dict[str, Any]], *, replacing: bool = True) -> None:
    """Insert the scores, replacing a sample's stored one (`replacing=False`: samples created in
    this transaction, which can have none: a plain insert, faster on PostgreSQL)."""
    insert_values(LabelSuspicion, rows, update_on_conflict=(
        ["sample"], ["score", "suggested_category", "evidence", "fingerprint", "computed_at"]) if replacing else None)


# --------------------------------------------------------------------------- samples being created
@dataclass
class EvidenceBasis:
    """What scoring a dataset's samples needs besides the samples: its classes' matcher and the
    hash of their definitions (part of every fingerprint)."""

    matcher: DefinitionMatcher
    definitions_hash: str


def evidence_basis(dataset_id: int) -> EvidenceBasis:
    definitions = _definitions(dataset_id)
    return EvidenceBasis(DefinitionMatcher(definitions), _definitions_hash(definitions))


@dataclass
class CreatedSample:
    """A sample created in this transaction with its first reasonings, its evidence in memory:
    `suspicions_store_created` stores its score without reading it back."""

    sample_id: int
    label_id: int
    updated_at: datetime
    suspicion: Suspicion  # `sample_suspicion` of its answers and image information
    reasonings: dict[int, tuple[int, datetime]]  # mode → (the reasoning's id, its updated_at)


def suspicions_store_created(*, basis: EvidenceBasis, samples: Sequence[CreatedSample]) -> int:
    """Store the scores of samples just created (their `label_suspicion` and `sort_suspicion`
    were written with them: `sort_key`) under the fingerprint `suspicions_refresh` would give them,
    so that it finds them current. An import creates thousands: reading each back with its
    answers, to score what was in memory, was a tenth of the import."""
    _store_suspicions([
        _suspicion_row(created.sample_id, created.suspicion, _fingerprint(
            basis.definitions_hash, label_id=created.label_id, updated_at=created.updated_at,
            reasonings=created.reasonings))
        for created in samples], replacing=False)
    return len(samples)


def suspicions_fill_missing(*, samples: QuerySet[Sample]) -> int:
    """Compute the suspicion of those `samples` that have none yet (data stored before this
    feature, or written around the services); one query when none is missing."""
    missing = list(samples.filter(suspicion__isnull=True).values_list("pk", flat=True))
    return suspicions_refresh(sample_ids=missing) if missing else 0


@receiver(post_save, sender=Sample)
@receiver(post_save, sender=Reasoning)
@receiver(post_delete, sender=Reasoning)
def _evidence_row_changed(sender, instance, **kwargs):
    """Single saves (a re-run accepted, the admin, test factories); bulk writes call
    suspicions_refresh themselves."""
    if kwargs.get("raw"):
        return
    sample_id = instance.pk if sender is Sample else instance.sample_id
    if sender is Reasoning and kwargs.get("signal") is post_delete:
        # The sample may be going too (a cascade): only refresh what is still there, after commit.
        transaction.on_commit(lambda: suspicions_refresh(sample_ids=[sample_id]))
        return
    suspicions_refresh(sample_ids=[sample_id])


@receiver(post_save, sender=Category)
def _definitions_changed(sender, instance, created, **kwargs):
    """A class's name or definition is part of every match of its dataset: recompute them (only
    the samples whose fingerprint differs are written) once the change is committed."""
    if created or kwargs.get("raw"):
        return
    dataset_id = instance.dataset_id
    transaction.on_commit(lambda: suspicions_refresh(samples=Sample.objects.filter(dataset_id=dataset_id)))


# --------------------------------------------------------------------------- reading
@dataclass
class SuspicionView:
    """A stored suspicion as the sample page explains it."""

    score: float
    suspected: bool
    threshold: float
    suggested_name: str
    witnesses: list[Witness]
    label_name: str

    @property
    def against(self) -> list[Witness]:
        return [w for w in self.witnesses if w.category_name != self.label_name]

    @property
    def for_label(self) -> list[Witness]:
        return [w for w in self.witnesses if w.category_name == self.label_name]

    @property
    def suggested_weight(self) -> float:
        return round(sum(w.weight for w in self.witnesses if w.category_name == self.suggested_name), 2)

    @property
    def label_weight(self) -> float:
        return round(sum(w.weight for w in self.for_label), 2)

    @property
    def total_weight(self) -> float:
        return TOTAL_WEIGHT


def suspicion_for(sample: Sample) -> SuspicionView | None:
    """The sample's stored suspicion, or None when nothing suggests another class. Read from the
    sample when it was loaded with it (`selectors.sample_detail` is), else with one query."""
    try:
        row = sample.suspicion
    except LabelSuspicion.DoesNotExist:
        row = None
    if row is None and suspicions_refresh(sample_ids=[sample.pk]):
        row = LabelSuspicion.objects.filter(sample_id=sample.pk).select_related("suggested_category").first()
    if row is None or row.score <= 0:
        return None
    witnesses = [Witness(**w) for w in row.evidence]
    return SuspicionView(row.score, row.score >= threshold(), threshold(),
                         row.suggested_category.name if row.suggested_category else "", witnesses, sample.label.name)


def ranked_samples(*, samples: QuerySet[Sample], refresh: bool = False) -> QuerySet[Sample]:
    """`samples` with a score above 0, most suspect first (ties by id as imported); each carries
    `suspicion_score` and `suggested_name`. Missing scores are computed first; `refresh` checks
    every sample's evidence too (the command line does, pages rely on the write-time refresh)."""
    if refresh:
        suspicions_refresh(samples=samples)
    else:
        suspicions_fill_missing(samples=samples)
    return (samples.filter(label_suspicion__gt=0)
            .annotate(suspicion_score=F("label_suspicion"), suggested_name=F("suspicion__suggested_category__name"))
            .order_by("sort_suspicion", "external_id"))


# --------------------------------------------------------------------------- measuring
@dataclass
class RankingQuality:
    k: int
    precision: float
    recall: float
    hits: int


def ranking_quality(ranked_ids: Sequence[str], wrong_ids: set[str], ks: Iterable[int] = (10, 20, 50)) -> list[RankingQuality]:
    """precision@k and recall@k of a ranking against the ids whose label is known to be wrong."""
    result = []
    for k in ks:
        hits = sum(1 for i in ranked_ids[:k] if i in wrong_ids)
        result.append(RankingQuality(k, hits / k if k else 0.0, hits / len(wrong_ids) if wrong_ids else 0.0, hits))
    return result
