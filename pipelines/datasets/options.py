"""The dataset builder's inputs and output: sources, options and the result of a build, and the
parsing of the split ratio the forms and commands accept."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from .neardup import DEFAULT_THRESHOLD

PREVIEW_ROWS = 5


@dataclass
class Source:
    """One input of a build: a name (kept on every record as `source`) and its records.

    `records` is an iterable or a zero-argument callable returning one (so it can be re-read).
    `cap`: at most this many records from this source. `weight`: relative share of the result
    (weights of 3 and 1 give a 3:1 mix, as large as the sources and `limit` allow).
    If the iterable has a `report` attribute (dict) after iteration — e.g. the log reader's drop
    reasons — it is included in the build report under `sources[name]["reader"]`.
    """

    name: str
    records: Iterable[dict] | Callable[[], Iterable[dict]]
    cap: int | None = None
    weight: float | None = None

    def iter_records(self) -> Iterable[dict]:
        return self.records() if callable(self.records) else self.records

    def declares_no_optional_columns(self) -> bool:
        """Whether the records say in advance that none of them carries system, history or images
        and all are plain JSON values (an empty `optional_columns` attribute, as `LogReader` has)."""
        return not callable(self.records) and getattr(self.records, "optional_columns", None) == ()


@dataclass
class BuildOptions:
    """The builder's options; defaults are the team's extraction script's defaults."""

    format: str = "alpaca"
    container: str | None = None  # "json" or "jsonl"; None = from the output suffix
    filter: Callable[[dict], str | None] | None = None
    dedup: bool = True
    dedup_field: str = "prompt"
    near_dup: bool = False
    near_dup_threshold: float = DEFAULT_THRESHOLD
    min_length: int | None = None
    max_length: int | None = None
    length: Callable[[str], int] = len
    limit: int | None = None
    shuffle: bool = True
    seed: int = 42
    split_ratio: tuple[float, ...] | None = None
    # Keep near-duplicate clusters inside one split (costs a MinHash pass when near_dup is off).
    split_keep_near_dups_together: bool = True
    dataset_name: str | None = None  # dataset_info key; default: the output file's stem
    preview_rows: int = PREVIEW_ROWS

    def describe(self) -> dict:
        """The options as JSON (callables by name), for reports and Export.params."""
        data = asdict(self)
        data["filter"] = getattr(self.filter, "__name__", None) if self.filter else None
        data["length"] = getattr(self.length, "__name__", repr(self.length))
        data["split_ratio"] = list(self.split_ratio) if self.split_ratio else None
        return data


@dataclass
class BuildResult:
    report: dict
    preview: list[dict] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.report["total"]


class BuildError(ValueError):
    """The options or sources cannot make a dataset (bad ratio, unknown format …)."""


# --------------------------------------------------------------------------- option parsing

def parse_split_ratio(text: str | None) -> tuple[float, ...] | None:
    """"0.8,0.1,0.1" -> (0.8, 0.1, 0.1); None/"" -> None. Two or three non-negative parts."""
    if not text:
        return None
    try:
        parts = tuple(float(p) for p in str(text).split(","))
    except ValueError:
        raise BuildError(f"拆分比例格式错误：{text!r}（例：0.8,0.1,0.1）") from None
    if len(parts) not in (2, 3) or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise BuildError(f"拆分比例需要 2 或 3 个非负数：{text!r}")
    return parts


def split_names(ratio: tuple[float, ...] | None) -> tuple[str, ...]:
    if not ratio:
        return ("all",)
    return ("train", "test") if len(ratio) == 2 else ("train", "val", "test")
