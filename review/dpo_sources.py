"""The reviewed training set of a dataset as a DPO prompt source (registered in
settings.DPO_PROMPT_SOURCES as "classification"): the corrected mode-3 outputs are the chosen answers."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core.errors import ApplicationError
from pipelines.dpo.sources import PromptRecord, PromptSource

from .exports import trainset_records
from .models import Dataset


class TrainsetSource(PromptSource):
    """The rows `review.exports.trainset_records` exports for a dataset (the same rule as the export)."""

    label = "分类推理（模式3 纠正后的训练集）"

    def clean(self, source: dict[str, Any]) -> dict[str, Any]:
        if not Dataset.objects.filter(name=source.get("dataset") or "").exists():
            raise ApplicationError("请选择数据集")
        return {"dataset": source["dataset"]}

    def records(self, source: dict[str, Any]) -> Iterator[PromptRecord]:
        dataset = Dataset.objects.get(name=source["dataset"])
        for record in trainset_records(dataset=dataset):
            yield PromptRecord(
                f"classification:{record['id']}", "classification", record["prompt"], record["response"],
                system=record.get("system") or "", images=tuple(record.get("images") or ()),
            )

    def choices(self) -> list[str]:
        """The dataset names the start form offers."""
        return list(Dataset.objects.values_list("name", flat=True))


TRAINSET = TrainsetSource()
