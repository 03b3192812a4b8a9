"""What an import tells: its problems and notes (each with where), the counts of what it saved, per
batch and in all, and how far it got."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from review.services import ClassificationRecord, RecordsSaveResult


@dataclass
class ImportProblem:
    location: str  # "file:line" or "file#index" relative to the import root
    message: str

    def __str__(self):
        return f"{self.location}: {self.message}"


@dataclass
class ImportReport:
    records_read: int = 0
    samples_imported: int = 0
    saved: RecordsSaveResult = field(default_factory=RecordsSaveResult)
    # Records not imported (or imported differently than written), each with where and why.
    problems: list[ImportProblem] = field(default_factory=list)
    # What was fixed or left alone on the way (NUL characters removed, other tasks in train.json …).
    notes: list[ImportProblem] = field(default_factory=list)
    classes_created: list[str] = field(default_factory=list)
    prompt_recorded: bool = False
    # How many problems and notes there are: the lists hold the first MAX_LISTED_FINDINGS of each.
    problems_total: int = 0
    notes_total: int = 0

    def summary_lines(self) -> list[str]:
        """A human summary, one fact per line, then each problem and note."""
        s = self.saved
        lines = [
            f"读取记录 {self.records_read} 条，导入样本 {self.samples_imported} 个",
            f"样本：新建 {s.samples_created}，更新 {s.samples_updated}；推理：新建 {s.reasonings_created}，"
            f"更新 {s.reasonings_updated}；新建类别 {len(self.classes_created)}"
            + (f"（{'、'.join(self.classes_created)}）" if self.classes_created else ""),
        ]
        if self.prompt_recorded:
            lines.append("已记录团队的模式3提示词（导出训练集时用作 instruction）")
        if not self.problems and not self.notes:
            lines.append("没有问题")
        for title, unit, listed, total in (("问题", "个", self.problems, self.problems_total),
                                           ("说明", "条", self.notes, self.notes_total)):
            total = max(total, len(listed))
            if total:
                lines.append(f"{title} {total} {unit}" + (f"（列出前 {len(listed)} {unit}）" if total > len(listed) else "")
                             + "：")
                lines += [f"  - {p}" for p in listed]
        return lines


@dataclass
class BatchOutcome:
    """What one batch stored: the counts, and the records handed to the database (prepared)."""

    records: list[ClassificationRecord] = field(default_factory=list)
    saved: RecordsSaveResult = field(default_factory=RecordsSaveResult)
    others: Counter = field(default_factory=Counter)

    def as_json(self) -> dict:
        return {"samples": len(self.records), "saved": asdict(self.saved), "others": dict(self.others)}


@dataclass
class ImportProgress:
    """Where a running import is: reading files (`done`/`total` in bytes), then saving samples."""

    phase: str  # "read" | "save"
    done: int
    total: int
