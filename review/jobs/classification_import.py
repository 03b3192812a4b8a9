"""Job kind "classification_import": `import_classification` of a folder or manifest, run by a worker
with its progress on the job page (the browser's way to import; the command line runs the same
steps in its own process).

Parameters: `path` (a folder in the team's layout or a .jsonl manifest, relative to MEDIA_ROOT: an
upload lands in MEDIA_ROOT/imports/), `dataset` (a name; created if missing), optionally `image_root`
and `prompt_file` (relative to MEDIA_ROOT too), `path_prefixes` ([[OLD, NEW under MEDIA_ROOT]]),
`encoding`, `create_classes`. Nothing outside MEDIA_ROOT is ever read.

Items, in order (one at a time):

- `read:<n> <file>` — one per file: its records checked and staged (`ClassificationImport.read_file`);
- `plan` — classes resolved (an unknown class fails it with the list, and nothing is written), the
  dataset created; it adds one `batch:<k>` item per IMPORT_BATCH_SAMPLES samples;
- `batch:<k>` — those samples assembled, their images stored, and written in short transactions.

A batch writes in `prepare`, outside the engine's per-item transaction, because that transaction
would hold SQLite's write lock (and PostgreSQL's row locks on the class counters) for the whole
batch; its writes are idempotent by (dataset, id), so an item run again after a crash does no harm.
The staging file lives in IMPORT_STAGING_ROOT under the job's `staging` token until the job ends
without failed items (a retry of failed items uses the same one).
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.conf import settings

from core.errors import ApplicationError
from core.images import media_path
from pipelines.jobs.kinds import ItemFailed, JobKindHandler, register
from pipelines.jobs.leases import lease_keeper
from pipelines.jobs.services import job_create
from pipelines.models import Job, JobItem, JobKind
from review.importing import ClassificationImport, ImportReport, plan_files

from .forms import ClassificationImportForm

READ, PLAN, BATCH = "read:", "plan", "batch:"
LISTED_IN_REPORT = 200  # problems and notes kept in the job's report (all are counted)


# --------------------------------------------------------------------------- parameters
def _media_relative(value: Any, what: str, *, must_exist: bool = True) -> str:
    """A path relative to MEDIA_ROOT, checked to stay inside it; ApplicationError otherwise."""
    text = str(value or "").strip()
    if not text:
        raise ApplicationError(f"请指定{what}（MEDIA_ROOT 下的相对路径）")
    path = media_path(text)  # refuses ../, absolute paths, symlinks out of MEDIA_ROOT
    if must_exist and not path.exists():
        raise ApplicationError(f"{what}不存在：{text}", code="not_found")
    return path.relative_to(Path(settings.MEDIA_ROOT).resolve()).as_posix()


def clean_import_params(params: dict[str, Any]) -> dict[str, Any]:
    dataset = str(params.get("dataset") or "").strip()
    if not dataset:
        raise ApplicationError("请填写数据集名称")
    if len(dataset) > 200:
        raise ApplicationError("数据集名称过长（上限 200 字符）")
    path = _media_relative(params.get("path"), "导入路径")
    image_root = _media_relative(params["image_root"], "图片目录") if params.get("image_root") else ""
    prompt_file = _media_relative(params["prompt_file"], "提示词文件") if params.get("prompt_file") else ""
    prefixes = []
    for pair in params.get("path_prefixes") or []:
        old, new = (list(pair) + ["", ""])[:2]
        if not str(old).strip():
            raise ApplicationError("路径前缀替换应为 OLD=NEW")
        prefixes.append([str(old).strip(), _media_relative(new, "路径前缀替换的目录")])
    files = params.get("files")
    if not files:  # pinned when the job is created: every execution reads the same files
        files = [f.rel for f in plan_files(media_path(path)).files]
        if not files:
            raise ApplicationError(f"{path} 中没有可导入的文件（需要 reasonbyQwen72b_model1/2/3、info_ectra、"
                                   "train.json 或 *.jsonl 清单）")
    return {
        "dataset": dataset, "path": path, "image_root": image_root, "prompt_file": prompt_file,
        "path_prefixes": prefixes, "encoding": str(params.get("encoding") or "").strip(),
        "create_classes": bool(params.get("create_classes")), "files": list(files),
        "staging": params.get("staging") or uuid.uuid4().hex,
        "concurrency": 1,  # one item at a time, in order: reading, the plan, then the batches
    }


def _importer(job: Job, keepalive=None) -> ClassificationImport:
    p = job.params
    importer = ClassificationImport(
        path=media_path(p["path"]), dataset_name=p["dataset"], staging_path=staging_path(job),
        image_root=media_path(p["image_root"]) if p.get("image_root") else None,
        path_prefixes=[(old, str(media_path(new))) for old, new in p.get("path_prefixes") or []],
        encoding=p.get("encoding") or None, create_classes=p.get("create_classes", False),
        prompt_file=media_path(p["prompt_file"]) if p.get("prompt_file") else None, files=p["files"],
    )
    if keepalive is not None:
        # Long statements on the staging file (ordering a million records) keep the lease too.
        importer.staging.db.set_progress_handler(lambda: keepalive() or 0, 200_000)
    return importer


def staging_path(job: Job) -> Path:
    folder = Path(settings.IMPORT_STAGING_ROOT)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"job-{job.params['staging']}.sqlite3"


# --------------------------------------------------------------------------- the job kind
@register
class ClassificationImportHandler(JobKindHandler):
    kind = JobKind.CLASSIFICATION_IMPORT
    queue = "extraction"
    uses_llm = False
    form_class = ClassificationImportForm

    def clean_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return clean_import_params(params)

    def item_keys(self, job: Job) -> list[str]:
        return [f"{READ}{n:05d} {rel}"[:255] for n, rel in enumerate(job.params["files"])] + [PLAN]

    def prepare(self, job: Job, key: str) -> dict[str, Any]:
        return _run_step(job, key)

    def store(self, job: Job, key: str, payload: Any, output: Any) -> dict[str, Any]:
        if key == PLAN:
            # The batches become items of the job, run after this one.
            existing = set(JobItem.objects.filter(job=job, key__startswith=BATCH).values_list("key", flat=True))
            JobItem.objects.bulk_create([JobItem(job=job, key=f"{BATCH}{k:06d}") for k in range(payload["batches"])
                                         if f"{BATCH}{k:06d}" not in existing], batch_size=1000)
        return payload

    def finalize(self, job: Job) -> dict[str, Any]:
        importer = _importer(job)
        try:
            report = importer.finish()
        finally:
            importer.close()
        failed = list(job.items.filter(status="failed").values_list("key", "error")[:5])
        result = report_json(report)
        if failed:
            result["failed_items"] = [{"item": key, "error": error} for key, error in failed]
        else:
            staging_path(job).unlink(missing_ok=True)
        return result


def _run_step(job: Job, key: str) -> dict[str, Any]:
    keepalive = lease_keeper(job.pk)
    try:
        importer = _importer(job, keepalive)
    except ApplicationError as exc:
        raise ItemFailed("invalid", exc.message) from None
    try:
        if key.startswith(READ):
            index = int(key[len(READ):].split(" ", 1)[0])
            records = importer.read_file(index, on_bytes=lambda _: keepalive())
            return {"file": job.params["files"][index], "records": records}
        if key == PLAN:
            try:
                batches = importer.prepare()
            except ApplicationError as exc:
                raise ItemFailed(exc.code if exc.code in ("unknown_classes", "invalid") else "invalid", exc.message) from None
            plan = importer.staging.get("plan")
            return {"batches": batches, "samples": plan["samples"], "records_read": plan["records_read"],
                    "classes_created": plan["new"]}
        if key.startswith(BATCH):
            k = int(key[len(BATCH):])
            outcome = importer.save_batch(k, importer.prepare_batch(k))
            return outcome.as_json()
        raise ItemFailed("invalid", f"未知的条目：{key}")
    finally:
        importer.close()


def report_json(report: ImportReport) -> dict[str, Any]:
    """An import's report as the job keeps it (the first LISTED_IN_REPORT problems and notes)."""
    return {
        "records_read": report.records_read,
        "samples_imported": report.samples_imported,
        "saved": {name: getattr(report.saved, name) for name in (
            "categories_created", "samples_created", "samples_updated", "reasonings_created",
            "reasonings_updated", "reasonings_pending")},
        "classes_created": report.classes_created,
        "prompt_recorded": report.prompt_recorded,
        "problems_total": max(report.problems_total, len(report.problems)),
        "problems": [{"location": p.location, "message": p.message} for p in report.problems[:LISTED_IN_REPORT]],
        "notes_total": max(report.notes_total, len(report.notes)),
        "notes": [{"location": n.location, "message": n.message} for n in report.notes[:LISTED_IN_REPORT]],
        "summary": report.summary_lines()[:2],
    }


# --------------------------------------------------------------------------- starting one
def classification_import_start(*, params: dict[str, Any], user=None) -> Job:
    """Queue an import job (parameters as in the module docstring)."""
    return job_create(kind=JobKind.CLASSIFICATION_IMPORT, params=params, user=user)
