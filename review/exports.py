"""The corrected mode-3 training set, trainset_error.md and the analysis as Markdown.

The training set is produced as plain records (the contract of `pipelines.datasets.formats`: dicts with
`id`, `source`, `prompt`, `response`, `system`, `images`) and written row by row through
`pipelines.datasets.formats`, so memory stays flat whatever the size of the dataset. Which samples go in:

* a reviewer's correction where the sample has one (source "corrected");
* otherwise mode 3's own output when it is correct and within the length limit (source "kept");
* samples flagged as label errors are left out and listed (they go to trainset_error.md);
* everything else (wrong, unparseable, over the limit, or no mode-3 reasoning, and not yet corrected)
  is left out and counted as pending.

Rows come in a fixed order (class position, class name, sample id) and carry no timestamps, so
exporting unchanged data twice gives byte-identical files.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


from django.db.models import FilteredRelation, Q

from config.spreadsheet import csv_lines
from pipelines.datasets import exports as pipeline_exports
from pipelines.datasets import formats
from pipelines.datasets.exports import (
    EmptyExport, ExportContent, data_files, deliver, export_create, export_path, safe_name,
)
from pipelines.jobs import prompts
from pipelines.models import Export, PromptTemplate

from . import rules
from .analysis import MODES, class_analysis
from core.errors import ApplicationError
from .models import Category, Cause, Dataset, Mode, Review, Sample
from .rules import length_limit

EXPORT_KIND = "classification_trainset"
# The formats the training-set export offers, and the pipelines.datasets.formats writer behind each.
TRAINSET_FORMATS: dict[str, str] = {
    "alpaca": "alpaca", "sharegpt": "sharegpt", "trl_messages": "trl_messages",
    "trl_prompt_completion": "trl_prompt_completion", "jsonl": "records",
}
FORMAT_LABELS = {
    "alpaca": "Alpaca（JSON 数组，instruction/input/output + images）— LLaMA-Factory",
    "sharegpt": "ShareGPT 多模态（JSON 数组，conversations + images）— LLaMA-Factory",
    "trl_messages": "TRL messages 多模态（JSON Lines，content 含 image + images）— TRL SFTTrainer（视觉模型）",
    "trl_prompt_completion": "TRL prompt/completion 纯文本（JSON Lines，不含图片）— TRL SFTTrainer（文本模型）",
    "jsonl": "JSON Lines（datafix 记录：id/source/prompt/response/system/images）",
}
FILE_SUFFIX = {"alpaca": ".json", "sharegpt": ".json", "trl_messages": ".jsonl", "trl_prompt_completion": ".jsonl",
               "jsonl": ".jsonl"}
# Formats for text models: the image and its "<image>" token are left out (counted in the report).
TEXT_ONLY_FORMATS = {"trl_prompt_completion"}
CHUNK_SIZE = 2000



# --------------------------------------------------------------------------- prompt


class _PromptCache:
    """Mode-3 prompts by template id, rendered once per export (the prompt is shared by all samples).

    A reasoning made with a recorded template gets that template's text; otherwise the newest mode-3
    template, or the default one. Definitions are the team's revised ones where they exist, as the
    jobs fill them in (`pipelines.jobs.prompts.render_prompt`). A reasoning made with no recorded template
    (imported) gets the team's own mode-3 prompt when the import recorded one with the dataset.
    """

    def __init__(self, dataset: Dataset):
        self.categories = list(dataset.categories.all())
        latest = (
            PromptTemplate.objects.filter(kind=PromptTemplate.Kind.CLASSIFICATION_MODE3).order_by("-version").first()
        )
        self.default = self._render(dataset.mode3_prompt or (latest.text if latest else default_mode3_prompt()))
        self._by_id: dict[int, str] = {}

    def _render(self, text: str) -> str:
        return prompts.render_prompt(text, categories=self.categories)

    def get(self, template_id: int | None) -> str:
        if template_id is None:
            return self.default
        if template_id not in self._by_id:
            text = PromptTemplate.objects.filter(pk=template_id).values_list("text", flat=True).first()
            self._by_id[template_id] = self._render(text) if text else self.default
        return self._by_id[template_id]


def default_mode3_prompt() -> str:
    return prompts.default_text(PromptTemplate.Kind.CLASSIFICATION_MODE3)


# --------------------------------------------------------------------------- records


@dataclass
class TrainsetReport:
    """What an export took, what it left out and why."""

    dataset: str
    format: str = ""
    rows: int = 0
    kept: int = 0
    corrected: int = 0
    pending: int = 0
    pending_by_reason: Counter = field(default_factory=Counter)
    pending_by_class: Counter = field(default_factory=Counter)
    # class name → [(sample id, suggested class name)]
    label_errors: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))

    @property
    def label_error_count(self) -> int:
        return sum(len(v) for v in self.label_errors.values())

    def as_dict(self) -> dict:
        """A JSON-ready form, stored in Export.report."""
        return {
            "dataset": self.dataset,
            "format": self.format,
            "rows": self.rows,
            "kept": self.kept,
            "corrected": self.corrected,
            "pending": self.pending,
            "pending_by_reason": dict(sorted(self.pending_by_reason.items())),
            "pending_by_class": dict(self.pending_by_class),  # class order, as exported
            "label_error_count": self.label_error_count,
            "label_errors": {
                name: [{"id": sid, "suggested": suggested} for sid, suggested in ids]
                for name, ids in self.label_errors.items()
            },
            "length_limit": length_limit(),
        }


PENDING_REASONS = {status: rules.EXPORT_STATUS_LABELS[status] for status in rules.PENDING}


def _trainset_rows(dataset: Dataset):
    """One row per sample with its export status (review.rules), mode-3 reasoning and review, in
    export order (one query)."""
    return (
        rules.with_status(Sample.objects.filter(dataset=dataset))
        .order_by("label__position", "label__name", "external_id")
        .values_list(
            "external_id", "image", "label__name", "live_export_status",
            "m3__output", "m3__prompt_template_id",
            "review__corrected_output", "review__suggested_label__name", "review__suggestion_uncertain",
        )
    )


def trainset_records(*, dataset: Dataset, report: TrainsetReport | None = None) -> Iterator[dict]:
    """Yield the corrected mode-3 training set as plain records; fill `report` as it goes.

    Which samples are exported, and why the others are not, is `review.rules.with_status`: the
    same rule every page shows. A correction that fails the checks never reaches the file.
    """
    report = report if report is not None else TrainsetReport(dataset=dataset.name)
    prompts = _PromptCache(dataset)
    prompt_texts: dict[tuple[int | None, int], str] = {}
    for (external_id, image, label_name, status, output, template_id, corrected, suggested,
         uncertain) in _trainset_rows(dataset).iterator(chunk_size=CHUNK_SIZE):
        if status == rules.LABEL_ERROR:
            report.label_errors[label_name].append((external_id, suggested or ("不确定" if uncertain else "")))
            continue
        if status == rules.CORRECTED:
            source, response = "corrected", corrected
            report.corrected += 1
        elif status == rules.KEPT:
            source, response = "kept", output
            report.kept += 1
        else:
            report.pending += 1
            report.pending_by_reason[status] += 1
            report.pending_by_class[label_name] += 1
            continue
        images = [image] if image else []
        report.rows += 1
        key = (template_id, len(images))
        prompt = prompt_texts.get(key)
        if prompt is None:  # the same few prompts for every row: build each once
            prompt = prompt_texts[key] = formats.with_image_tokens(prompts.get(template_id), len(images))
        yield {
            "id": external_id,
            "source": source,
            "prompt": prompt,
            "response": response,
            "system": "",
            "images": images,
        }


def _record_line(record: dict) -> dict:
    """The `jsonl` format: the record itself, keys in a fixed order."""
    return {key: record[key] for key in ("id", "source", "prompt", "response", "system", "images")}


def write_trainset(*, dataset: Dataset, fmt: str, path: Path, counts: Counter | None = None) -> TrainsetReport:
    """Stream the training set of `dataset` into `path` in format `fmt`; returns the report.

    The file is written under a temporary name and renamed into place (`core.files`), so a
    failed or killed export leaves no half file. `counts["images_left_out"]`: images a text-only
    format did not carry.
    """
    if fmt not in TRAINSET_FORMATS:
        raise ApplicationError(f"未知格式 {fmt!r}；可选：{', '.join(TRAINSET_FORMATS)}", code="bad_format")
    report = TrainsetReport(dataset=dataset.name, format=fmt)
    counts = counts if counts is not None else Counter()
    text_only = fmt in TEXT_ONLY_FORMATS
    columns = {"images"} if _has_images(dataset) and not text_only else set()
    writer_format = TRAINSET_FORMATS[fmt]
    with formats.RowWriter(path, "jsonl" if FILE_SUFFIX[fmt] == ".jsonl" else "json") as out:
        for record in trainset_records(dataset=dataset, report=report):
            if writer_format == "records":
                out.write(_record_line(record))
                continue
            if text_only and record.get("images"):
                counts["images_left_out"] += len(record["images"])
                record = {**record, "images": [], "prompt": record["prompt"].replace(formats.IMAGE_TOKEN, "")}
            row = formats.to_row(writer_format, record, columns)
            errors = formats.validate_row(writer_format, row)
            if errors:  # e.g. a literal "<image>" in a corrected answer: refuse, never write a broken row
                raise ApplicationError(f"样本 {record['id']} 不能写成 {fmt}：{'；'.join(errors)}", code="invalid_row")
            out.write(row)
    return report


def _has_images(dataset: Dataset) -> bool:
    return Sample.objects.filter(dataset=dataset).exclude(image="").exists()


def dataset_info_for(*, fmt: str, file_name: str, has_images: bool) -> dict | None:
    """The LLaMA-Factory dataset_info.json entry for an export (None where LLaMA-Factory has none)."""
    writer_format = TRAINSET_FORMATS.get(fmt)
    if writer_format in (None, "records"):
        return None
    text_only = fmt in TEXT_ONLY_FORMATS
    return formats.dataset_info_entry(writer_format, file_name,
                                      columns={"images"} if has_images and not text_only else set())


def default_file_name(*, dataset: Dataset, fmt: str) -> str:
    return f"{safe_name(dataset.name, 'dataset')}_trainset_{fmt}{FILE_SUFFIX[fmt]}"


def trainset_export(*, dataset: Dataset, fmt: str, user=None, path: Path | None = None,
                    overwrite: bool = False) -> Export:
    """Export the corrected mode-3 training set through the export service and record it.

    `user` is who asked (None from the command line); only staff may export from the browser/API.
    The export is a new folder under EXPORT_ROOT (data file + dataset_info.json). `path` (the
    command line's --output) also gets a copy of the files, with dataset_info.json merged beside it;
    an existing file there is refused unless `overwrite`. No eligible row is an error (EmptyExport).
    """
    if user is not None and not (user.is_authenticated and user.is_staff):
        raise ApplicationError("只有管理员可以导出训练集。", code="forbidden")
    if fmt not in TRAINSET_FORMATS:
        raise ApplicationError(f"未知格式 {fmt!r}；可选：{', '.join(TRAINSET_FORMATS)}", code="bad_format")
    file_name = Path(path).name if path else default_file_name(dataset=dataset, fmt=fmt)
    has_images = _has_images(dataset)

    def write(folder: Path) -> ExportContent:
        counts: Counter = Counter()
        report = write_trainset(dataset=dataset, fmt=fmt, path=folder / file_name, counts=counts)
        info = dataset_info_for(fmt=fmt, file_name=file_name, has_images=has_images)
        # Named after the file (`<dataset>_trainset_<format>` by default): files in one folder have
        # distinct names, so formats exported side by side get distinct dataset_info entries.
        entries = {Path(file_name).stem: info} if info else {}
        report_data = report.as_dict()
        if not report.rows:
            raise EmptyExport(f"数据集 {dataset.name} 没有可导出的行（待修正 {report.pending}，"
                              f"标签错误 {report.label_error_count}）：未写入文件，也未写入 dataset_info.json。")
        if entries:
            report_data["dataset_info"] = entries
        if fmt in TEXT_ONLY_FORMATS:
            report_data["images_left_out"] = counts["images_left_out"]
        return ExportContent(row_count=report.rows, dataset_info=entries, report=report_data)

    if path:  # refuse a clash at --output before the export is made
        _check_delivery(Path(path), overwrite=overwrite)
    export = export_create(
        kind=EXPORT_KIND, fmt=fmt, write=write, user=user, label=f"{dataset.name}-{fmt}",
        params={"dataset": dataset.name, "dataset_id": dataset.pk, "length_limit": length_limit()},
    )
    if path:
        deliver(export, path, overwrite=overwrite)
    return export


def _check_delivery(path: Path, *, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise ApplicationError(f"已存在，未覆盖：{path}（换一个 --output 或加 --overwrite）", code="exists")


def export_file_path(export: Export) -> Path:
    """The training file of a training-set export, confined to its folder under EXPORT_ROOT."""
    names = data_files(export)
    if not names:
        raise ApplicationError("导出文件不存在或不在导出目录中。", code="not_found")
    return export_path(export, names[0])


def visible_exports(*, user):
    """Exports the user may see: staff see all, others only their own (`pipelines.datasets.exports`' rule)."""
    return pipeline_exports.visible_exports(user=user)


# --------------------------------------------------------------------------- Markdown


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell (one line, pipes escaped, no raw HTML)."""
    return md_text(text).replace("|", "\\|")


def md_text(text: str) -> str:
    """Model text inline in Markdown: one line, no raw HTML, quotes kept readable."""
    return " ".join(str(text).split()).replace("<", "&lt;").replace(">", "&gt;")


def trainset_error_markdown(*, dataset: Dataset) -> Iterator[str]:
    """trainset_error.md: the samples flagged as label errors, grouped by class, with ids."""
    rows = (
        Review.objects.filter(sample__dataset=dataset, label_error=True)
        .order_by("sample__label__position", "sample__label__name", "sample__external_id")
        .values_list("sample__label__name", "sample__external_id", "suggested_label__name", "note")
    )
    yield f"# trainset_error — {md_text(dataset.name)}\n\n"
    yield "训练集标签分配不合理的样本（审核时标记为“标签错误”），按类别列出。\n"
    current, count = None, 0
    for label_name, external_id, suggested, note in rows.iterator(chunk_size=CHUNK_SIZE):
        if label_name != current:
            current = label_name
            yield f"\n## {md_text(label_name)}\n\n"
        line = f"- {md_text(external_id)}"
        if suggested:
            line += f"（建议类别：{md_text(suggested)}）"
        if note:
            line += f" — {md_text(note)}"
        yield line + "\n"
        count += 1
    if not count:
        yield "\n（暂无标签错误样本）\n"


MODE2_ERRORS_CSV_HEADER = ("类别", "样本ID", "模式2预测", "原因", "标签错误", "建议类别", "备注", "审核人", "疑似标签错误度")


def mode2_errors_csv(*, dataset: Dataset) -> Iterator[str]:
    """模式2错误.csv: every sample mode 2 did not get right, by class, with the reviewer's cause,
    label-error flag and note (the list each reviewer kept by hand), and the label-error suspicion
    score (review.suspicion), as CSV lines for a spreadsheet.

    Model output and notes may hold anything: cells pass through `config.spreadsheet`, which
    defuses formulas.
    """
    causes = dict(Cause.choices)
    rows = (
        Sample.objects.filter(dataset=dataset, mode2_error=True)
        .annotate(m2=FilteredRelation("reasonings", condition=Q(reasonings__mode=Mode.WITH_DEFINITIONS)))
        .order_by("label__position", "label__name", "external_id")
        .values_list("label__name", "external_id", "m2__predicted_name", "review__cause", "review__label_error",
                     "review__suggested_label__name", "review__note", "review__reviewer__username",
                     "label_suspicion")
    )
    lines = (
        (label, external_id, predicted or "（无法解析）", causes.get(cause, "未标注"),
         "是" if label_error else "", suggested or "", note or "", reviewer or "",
         f"{score:.2f}")
        for label, external_id, predicted, cause, label_error, suggested, note, reviewer, score
        in rows.iterator(chunk_size=CHUNK_SIZE)
    )
    return csv_lines(MODE2_ERRORS_CSV_HEADER, lines)


CAUSE_NUMBERS = {Cause.DEFINITIONS_OVERLAP: "(1)", Cause.LABEL_WRONG: "(2)", Cause.MODEL_WEAK: "(3)"}


def _percent(stats) -> str:
    return f"{stats.accuracy_percent:.1f}%" if stats.accuracy_percent is not None else "—"


def class_analysis_markdown(*, category: Category, level: int = 2) -> Iterator[str]:
    """One class's section of 分类分析.md, as the team wrote it by hand."""
    a = class_analysis(category=category)
    h = "#" * level
    yield f"{h} {md_text(category.name)}\n\n"
    yield f"定义：{md_text(category.definition) or '（无）'}\n\n"
    if category.revised_definition:
        yield f"修订定义：{md_text(category.revised_definition)}\n\n"
    yield f"训练集中共有{a.sample_count}个样本\n\n"
    yield f"{h}# 1、模式2推理错误（{len(a.mode2_errors)} 个）\n\n"
    for e in a.mode2_errors:
        predicted = "无法解析" if e.unparsed else (e.predicted_category or e.predicted_name)
        label_flag = "；已标记为标签错误" if e.label_error else ""
        # The team's wording: the reviewer's own reason, then which of (1)/(2)/(3) it belongs to.
        reason = md_text(e.note) if e.note else "（未填写）"
        yield (f"id: {md_text(e.external_id)}，推理结果：\"{md_text(predicted)}\"，"
               f"出错原因：{reason}（属于{CAUSE_NUMBERS.get(e.cause, '未标注')}）{label_flag}\n\n")
    if not a.mode2_errors:
        yield "无\n\n"
    yield (
        f"原因统计：(1) 类别定义有交集 {a.causes[Cause.DEFINITIONS_OVERLAP]}，(2) 数据集标签错误 "
        f"{a.causes[Cause.LABEL_WRONG]}，(3) 模型能力不足 {a.causes[Cause.MODEL_WEAK]}，"
        f"未标注 {a.counts.unanalysed}\n\n"
    )
    yield f"{h}# 2、模式2与模式3对比（字数限制的影响）\n\n"
    yield "| 模式 | 推理数 | 正确 | 错误 | 无法解析 | 准确率 | 平均字数 | 超过限制 |\n"
    yield "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    for mode in MODES:
        s = a.mode(mode)
        mean = f"{s.mean_length:.1f}" if s.mean_length is not None else "—"
        yield f"| {md_cell(s.label)} | {s.total} | {s.correct} | {s.wrong} | {s.unparsed} | {_percent(s)} | {mean} | {s.over_limit} |\n"
    yield f"\n模式2正确→模式3错误（{len(a.right_to_wrong)}）：{', '.join(md_text(i) for _, i in a.right_to_wrong) or '无'}\n\n"
    yield f"模式2错误→模式3正确（{len(a.wrong_to_right)}）：{', '.join(md_text(i) for _, i in a.wrong_to_right) or '无'}\n\n"
    yield f"{h}# 3、混淆（标签 vs 预测）\n\n"
    yield "| 预测类别 | 模式1 | 模式2 | 模式3 |\n|---|---:|---:|---:|\n"
    for name, counts in a.predicted.items():
        yield f"| {md_cell(name or '无法解析')} | " + " | ".join(str(counts.get(m, 0)) for m in MODES) + " |\n"
    if a.predicted_as_this:
        yield "\n被误判为本类的其他类别样本：\n\n| 标签类别 | 模式1 | 模式2 | 模式3 |\n|---|---:|---:|---:|\n"
        for name, counts in a.predicted_as_this.items():
            yield f"| {md_cell(name)} | " + " | ".join(str(counts.get(m, 0)) for m in MODES) + " |\n"
    yield "\n"


def dataset_analysis_markdown(*, dataset: Dataset) -> Iterator[str]:
    """分类分析.md for every class of the dataset."""
    yield f"# 分类分析 — {md_text(dataset.name)}\n\n"
    for category in dataset.categories.all():
        yield from class_analysis_markdown(category=category, level=2)


def report_markdown(export: Export) -> str:
    """A short human-readable report of one training-set export."""
    r = export.report or {}
    lines = [
        f"# 训练集导出 #{export.pk} — {md_text(r.get('dataset', ''))}",
        "",
        f"- 格式：{export.format}",
        f"- 导出行数：{export.row_count}（保留模式3输出 {r.get('kept', 0)}，审核修正 {r.get('corrected', 0)}）",
        f"- 待修正（未导出）：{r.get('pending', 0)}",
    ]
    for reason, n in (r.get("pending_by_reason") or {}).items():
        lines.append(f"  - {PENDING_REASONS.get(reason, reason)}：{n}")
    lines.append(f"- 标签错误（未导出，见 trainset_error.md）：{r.get('label_error_count', 0)}")
    for name, items in (r.get("label_errors") or {}).items():
        lines.append(f"  - {md_text(name)}：{', '.join(md_text(i['id']) for i in items)}")
    return "\n".join(lines) + "\n"
