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

import shutil
import stat
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings

from core.errors import ApplicationError
from core.images import media_path
from review.importers import ClassificationImport, ImportReport, plan_files

from .jobkinds import ItemFailed, JobKindHandler, register
from .jobs import job_create, lease_keeper
from .models import Job, JobItem, JobKind

READ, PLAN, BATCH = "read:", "plan", "batch:"
LISTED_IN_REPORT = 200  # problems and notes kept in the job's report (all are counted)
UPLOAD_FOLDER = "imports"


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


def import_upload_store(upload) -> str:
    """Keep an uploaded manifest (.jsonl) or zip of the team's folder under MEDIA_ROOT/imports/<id>/
    and return the path to import (relative to MEDIA_ROOT). Size-checked against
    IMPORT_UPLOAD_MAX_BYTES (the upload, and a zip's content as it is unpacked); a zip member that
    would land outside its folder, or is a link, is refused."""
    limit = settings.IMPORT_UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise ApplicationError(f"文件过大（{upload.size} 字节，上限 {limit}，设置 IMPORT_UPLOAD_MAX_BYTES）")
    name = Path(upload.name or "").name
    suffix = Path(name).suffix.lower()
    if suffix not in (".jsonl", ".json", ".zip"):
        raise ApplicationError("只接受 .jsonl 清单、.json 文件或团队目录的 .zip 压缩包")
    folder_rel = f"{UPLOAD_FOLDER}/{uuid.uuid4().hex[:16]}"
    folder = media_path(folder_rel)
    folder.mkdir(parents=True)
    try:
        if suffix != ".zip":
            safe = _safe_name(name) or f"upload{suffix}"
            with open(folder / safe, "wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            return f"{folder_rel}/{safe}"
        archive_path = folder / ".upload.zip"
        with open(archive_path, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        try:
            top = _unpack(archive_path, folder / "content", limit)
        finally:
            archive_path.unlink(missing_ok=True)
        return f"{folder_rel}/content" + (f"/{top}" if top else "")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def upload_folder(relative: str) -> str:
    """The unpacked folder of an upload (MEDIA_ROOT/imports/<id>/content), given the path it imports."""
    parts = PurePosixPath(relative).parts
    return "/".join(parts[:3]) if len(parts) >= 3 and parts[2] == "content" else "/".join(parts[:2])


def import_upload_discard(relative: str) -> None:
    """Remove an upload's folder (MEDIA_ROOT/imports/<id>/) when its job could not be created."""
    parts = PurePosixPath(relative).parts
    if len(parts) >= 2 and parts[0] == UPLOAD_FOLDER:
        shutil.rmtree(media_path(f"{parts[0]}/{parts[1]}"), ignore_errors=True)


def _safe_name(name: str) -> str:
    return "".join(ch for ch in name if ch not in '/\\\x00:*?"<>|').strip(" .")[:200]


def _member_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & 0x800:  # not marked UTF-8: Chinese Windows tools write GBK names
        try:
            name = name.encode("cp437").decode("gbk")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name.replace("\\", "/")


def _unpack(archive: Path, target: Path, limit: int) -> str:
    """Unpack a zip into `target`, refusing escapes, links and more than `limit` bytes; returns the
    single top-level folder when everything is inside one ("" otherwise)."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise ApplicationError("不是有效的 zip 压缩包") from None
    with zf:
        members = []
        for info in zf.infolist():
            name = _member_name(info)
            parts = PurePosixPath(name).parts
            if name.startswith("/") or any(p in ("..", "") for p in parts) or (parts and ":" in parts[0]):
                raise ApplicationError(f"压缩包中的路径超出目录：{name}", code="path_escape")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ApplicationError(f"压缩包中不能有链接：{name}", code="path_escape")
            if parts and parts[0] == "__MACOSX":
                continue
            members.append((info, parts))
        if sum(info.file_size for info, _ in members) > limit:
            raise ApplicationError(f"压缩包解压后过大（上限 {limit} 字节，设置 IMPORT_UPLOAD_MAX_BYTES）")
        target.mkdir(parents=True)
        written = 0
        for info, parts in members:
            path = target.joinpath(*parts)
            if not path.resolve().is_relative_to(target.resolve()):
                raise ApplicationError(f"压缩包中的路径超出目录：{'/'.join(parts)}", code="path_escape")
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as source, open(path, "wb") as out:
                for chunk in iter(lambda: source.read(1 << 20), b""):
                    written += len(chunk)
                    if written > limit:  # declared sizes can lie
                        raise ApplicationError(f"压缩包解压后过大（上限 {limit} 字节，设置 IMPORT_UPLOAD_MAX_BYTES）")
                    out.write(chunk)
        tops = {parts[0] for _, parts in members if parts}
        only = next(iter(tops)) if len(tops) == 1 else ""
        return only if only and (target / only).is_dir() else ""
