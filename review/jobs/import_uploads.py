"""Uploads for the browser's import: a manifest or a zip of the team's folder kept under
MEDIA_ROOT/imports/<id>/ (size-checked, unpacked without escapes), and removed if no job reads it."""
from __future__ import annotations

import shutil
import stat
import uuid
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings

from core.errors import ApplicationError
from core.images import media_path

UPLOAD_FOLDER = "imports"


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
