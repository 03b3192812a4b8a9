"""Files uploaded through a form (feedback files, generation sources, DPO prompts): one size limit
(UPLOAD_MAX_BYTES), the accepted endings, and a stored name nobody else has, under MEDIA_ROOT."""
from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.text import get_valid_filename

from .errors import ApplicationError

JSON_SUFFIXES = (".json", ".jsonl")


def upload_check(upload: UploadedFile | None, *, suffixes: tuple[str, ...] = JSON_SUFFIXES) -> UploadedFile:
    """The upload, if it is there, within UPLOAD_MAX_BYTES and named with one of `suffixes`;
    ApplicationError saying what is wrong otherwise."""
    if upload is None:
        raise ApplicationError("请选择要上传的文件")
    limit = settings.UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise ApplicationError(f"文件过大（{filesizeformat(upload.size)}，上限 {filesizeformat(limit)}，"
                               "设置 UPLOAD_MAX_BYTES）")
    if not upload.name.lower().endswith(suffixes):
        raise ApplicationError(f"只接受 {' 或 '.join(suffixes)} 文件")
    return upload


def upload_store(upload: UploadedFile | None, *, folder: str, suffixes: tuple[str, ...] = JSON_SUFFIXES) -> Path:
    """Check the upload (`upload_check`) and write it to MEDIA_ROOT/`folder`/<random>_<its name>;
    returns that path. The name is new, so nothing else can be reading or writing it."""
    upload = upload_check(upload, suffixes=suffixes)
    target = Path(settings.MEDIA_ROOT) / folder
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{uuid.uuid4().hex[:12]}_{get_valid_filename(Path(upload.name).name)}"
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return path
