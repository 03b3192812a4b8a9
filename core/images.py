"""Safe handling of image files: confined paths, allowed formats, size and pixel caps.

Every area that reads, stores or serves an image goes through these helpers:

- `confine_path(root, relative)` — the absolute path of `relative` inside `root`, or an
  `ApplicationError(code="path_escape")` for `../`, absolute, URL-encoded or backslash escapes.
- `media_path(relative)` — the same, confined to `settings.MEDIA_ROOT`.
- `inspect_image(path)` — checks byte size (`IMAGE_MAX_BYTES`) before opening, the format
  (`IMAGE_ALLOWED_FORMATS`) and the pixel count (`IMAGE_MAX_PIXELS`) from the header before decoding,
  then verifies the file; returns an `ImageCheck` or raises `ApplicationError(code="image_invalid")`.
- `store_image(source, *, folder, owner)` — inspects a file and copies it into one of 256 subfolders
  of MEDIA_ROOT/<folder>/ under a name no other owner or content can take, returning the path
  relative to MEDIA_ROOT (what `Sample.image` holds).
- `image_content_type(format)` — the MIME type to serve a checked image with.
- `image_store_processes(n)` — processes to run `store_image` in (or a caller's function around it:
  an import's assembles its samples and locates each path first), beside a process busy with other
  work (an import's writes), with this process's image settings.
"""
import hashlib
import io
import os
import struct
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from stat import S_ISREG
from typing import BinaryIO
from urllib.parse import unquote

from django.conf import settings
from PIL import Image, ImageFile

from core.errors import ApplicationError
from core.processes import worker_processes

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
}
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}


@dataclass(frozen=True)
class ImageCheck:
    """What `inspect_image` learned about a file that passed every check."""

    path: Path
    format: str
    width: int
    height: int
    size_bytes: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def _escape(relative: str) -> ApplicationError:
    return ApplicationError(f"路径超出允许的目录：{relative}", code="path_escape", extra={"path": relative})


def confine_path(root: str | Path, relative: str, *, resolved: dict | None = None) -> Path:
    """The resolved absolute path of `relative` inside `root`.

    Raises ApplicationError(code="path_escape") when the path is empty, absolute (POSIX, Windows
    drive or UNC), contains `..` (also URL-encoded, e.g. `%2e%2e%2f`, or double-encoded), a NUL
    byte, or resolves outside `root` through a symlink.

    `resolved`: a cache of the folders already resolved and confined (an empty dict to start), for a
    caller that confines many files in few folders (an import): resolving walks every component of
    the path, so then only the root and each folder are resolved and checked once, and the file
    itself only if it is a link.
    """
    if not isinstance(relative, str) or not relative.strip():
        raise ApplicationError("路径为空", code="path_escape", extra={"path": relative})
    decoded = relative
    for _ in range(3):  # double- and triple-encoded escapes decode to the same thing
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    if "\x00" in decoded:
        raise _escape(relative)
    normalized = decoded.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        raise _escape(relative)
    parts = PurePosixPath(normalized).parts
    if any(part == ".." for part in parts):
        raise _escape(relative)
    if resolved is None:
        root_path = Path(root).resolve()
        candidate = root_path.joinpath(*parts).resolve()
    else:
        root_path, folder, folder_inside = _confined_folder(root, parts[:-1], resolved)
        if not parts:
            return root_path
        candidate = folder / parts[-1]
        if not candidate.is_symlink():
            # The file is a child of its resolved folder: inside root exactly when that folder is.
            if not folder_inside and candidate != root_path:
                raise _escape(relative)
            return candidate
        candidate = candidate.resolve()
    if candidate != root_path and root_path not in candidate.parents:
        raise _escape(relative)  # a symlink inside root pointing out of it
    return candidate


def _confined_folder(root: str | Path, folder_parts: tuple[str, ...], resolved: dict) -> tuple[Path, Path, bool]:
    """(root resolved, root/folder_parts resolved, whether that folder is root or inside it), from
    `confine_path`'s cache; keyed by strings, not paths (a path object costs more to make and hash
    than the lookup saves)."""
    key = (str(root), folder_parts)
    if key not in resolved:
        root_path = Path(root).resolve()
        folder = root_path.joinpath(*folder_parts).resolve()
        resolved[key] = (root_path, folder, folder == root_path or root_path in folder.parents)
    return resolved[key]


def media_path(relative: str) -> Path:
    """`confine_path` against `settings.MEDIA_ROOT`."""
    return confine_path(settings.MEDIA_ROOT, relative)


def inspect_image(path: str | Path, *, data: bytes | None = None) -> ImageCheck:
    """Check an image file without trusting it; raise ApplicationError(code="image_invalid").

    Order matters: the byte size is checked before the file is opened, the format and pixel count
    are read from the header before any pixel data is decoded (decompression bombs), and only then
    is the file verified for truncation or corruption. `data`: the file's bytes, when the caller has
    read them already (after checking the size with `image_size_check`): nothing is read again.
    """
    path = Path(path)
    size = image_size_check(path) if data is None else len(data)
    with (path.open("rb") if data is None else io.BytesIO(data)) as fp:
        opened = _open_header(fp, path)
        if opened is None:
            other = _other_format(path, data)
            if other:
                raise ApplicationError(f"不支持的图片格式：{path.name}（{other}）", code="image_invalid",
                                       extra={"reason": "format"})
            raise ApplicationError(f"图片无法读取或已损坏：{path.name}（无法识别的文件头）", code="image_invalid",
                                   extra={"reason": "corrupt"})
        image_format, image = opened
        with image:
            width, height = image.size
            if width * height > settings.IMAGE_MAX_PIXELS:
                raise ApplicationError(
                    f"图片像素过多：{path.name}（{width}×{height}，上限 {settings.IMAGE_MAX_PIXELS} 像素）",
                    code="image_invalid",
                    extra={"reason": "too_many_pixels"},
                )
            try:
                # The image the header was read into is verified: the file is parsed once (an
                # import checks every image, and parsing was most of that check).
                image.verify()
            except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
                raise ApplicationError(
                    f"图片无法读取或已损坏：{path.name}（{exc.__class__.__name__}）",
                    code="image_invalid",
                    extra={"reason": "corrupt"},
                ) from exc
    return ImageCheck(path=path, format=image_format, width=width, height=height, size_bytes=size)


def image_size_check(path: Path) -> int:
    """The byte size of the image file at `path`; ApplicationError if it is missing, empty or too big
    (checked before the file is opened)."""
    try:
        stat = path.stat()
    except OSError:
        stat = None
    if stat is None or not S_ISREG(stat.st_mode):
        raise ApplicationError(f"图片不存在：{path.name}", code="image_invalid", extra={"reason": "missing"})
    size = stat.st_size
    if size > settings.IMAGE_MAX_BYTES:
        raise ApplicationError(
            f"图片过大：{path.name}（{size} 字节，上限 {settings.IMAGE_MAX_BYTES}）",
            code="image_invalid",
            extra={"reason": "too_many_bytes"},
        )
    if size == 0:
        raise ApplicationError(f"图片为空：{path.name}", code="image_invalid", extra={"reason": "empty"})
    return size


def _open_header(fp: BinaryIO, path: Path) -> tuple[str, ImageFile.ImageFile] | None:
    """(format, the image opened from `fp`'s header) for an allowed format, else None.

    What `Image.open` does, without Pillow's own bomb check: a huge image is then reported as "too
    many pixels" with its dimensions rather than as an unreadable file. No pixel data is decoded;
    the caller checks the size before anything more is read, then closes the image.
    """
    Image.init()
    prefix = fp.read(16)
    for image_format in settings.IMAGE_ALLOWED_FORMATS:
        if image_format not in CONTENT_TYPES or image_format not in Image.OPEN:
            continue
        factory, accept = Image.OPEN[image_format]
        accepted = accept(prefix) if accept else True
        if isinstance(accepted, str) or not accepted:
            continue
        fp.seek(0)
        try:
            image = factory(fp, str(path))
        except (SyntaxError, IndexError, TypeError, ValueError, OSError, EOFError, struct.error):
            continue
        return image.format or image_format, image
    return None


def _other_format(path: Path, data: bytes | None = None) -> str | None:
    """The format Pillow recognises for a file none of the allowed formats accepted, if any."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path if data is None else io.BytesIO(data)) as image:
                return image.format
    except Exception:  # noqa: BLE001 - any failure means "not a recognisable image"
        return None


def safe_file_stem(text: str, *, max_length: int = 120) -> str:
    """A file-name stem made only of ASCII letters, digits, `-`, `_` and `.` (never `..`)."""
    stem = "".join(ch if (ch.isascii() and (ch.isalnum() or ch in "-_.")) else "_" for ch in text)
    stem = stem.strip("._")[:max_length]
    return stem or "image"


def stored_image_name(owner: str, content_digest: str) -> str:
    """The file-name stem of an image stored for `owner` (a sample id) with the given content.

    A readable ASCII part of the id, then a hash of the id *and* the content: ids that differ only in
    non-ASCII or punctuation (`样本1`/`图片1`, `a/b`/`a_b`) never meet, and a changed image gets a new
    file instead of overwriting the one a review was made against.
    """
    digest = hashlib.sha256(owner.encode("utf-8") + b"\0" + content_digest.encode("ascii")).hexdigest()
    return f"{safe_file_stem(owner, max_length=40)}-{digest[:NAME_HASH_CHARS]}"


NAME_HASH_CHARS = 20  # hex digits of the hash ending a stored image's name


def store_image(source: str | Path, *, folder: str, owner: str) -> str:
    """Inspect `source` and copy it to MEDIA_ROOT/<folder>/<shard>/<name><ext>; return that relative
    path.

    `<name>` is `stored_image_name(owner, sha256 of the bytes)` and `<shard>` the first two hex
    digits of its hash: 256 subfolders, so that a dataset of a million images never has them all in
    one folder (creating a file in a folder of 100,000 cost up to 0.5 ms of the kernel's time, in
    one of 400 a tenth of that). `folder` is itself confined to MEDIA_ROOT; the extension comes from
    the detected format, not the source name. Files are never overwritten: the same owner and bytes
    give the same name, which is then left as it is — also where an earlier version stored it,
    directly in `<folder>` (a re-import does not copy it again).
    """
    source = Path(source)
    image_size_check(source)
    data = source.read_bytes()  # read once: checked, hashed and written from memory (≤ IMAGE_MAX_BYTES)
    check = inspect_image(source, data=data)
    stem = stored_image_name(owner, hashlib.sha256(data).hexdigest())
    name, shard = f"{stem}{check.extension}", stem[-NAME_HASH_CHARS:][:2]
    folder = folder.strip("/")
    # `name` has no separator and no `..` (stored_image_name): confining its folder (the shard's, a
    # link out of MEDIA_ROOT included) confines it.
    shard_folder = _media_folder(f"{folder}/{shard}")
    target = os.path.join(shard_folder, name)
    if _is_stored(target, check.size_bytes):
        return f"{folder}/{shard}/{name}"
    if _is_stored(os.path.join(_media_folder(folder), name), check.size_bytes):
        return f"{folder}/{name}"
    tmp = os.path.join(shard_folder, f".{name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        handle = open(tmp, "wb")
    except FileNotFoundError:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        handle = open(tmp, "wb")
    with handle:
        handle.write(data)
    os.replace(tmp, target)
    return f"{folder}/{shard}/{name}"


def _is_stored(path: str, size: int) -> bool:
    """Whether a regular file of `size` bytes is at `path`: the name holds the content's hash, so
    such a file is the image."""
    try:
        present = os.lstat(path)
    except FileNotFoundError:
        return False
    return S_ISREG(present.st_mode) and present.st_size == size


_media_folders: dict[tuple[str, str], Path] = {}


def _media_folder(folder: str) -> Path:
    """`media_path(folder)`, resolved once per MEDIA_ROOT and folder (an import stores thousands of
    images in one folder; resolving walks every component of the path)."""
    key = (str(settings.MEDIA_ROOT), folder)
    if key not in _media_folders:
        _media_folders[key] = media_path(folder)
    return _media_folders[key]


# The settings store_image reads: what a process storing images for another one is given.
STORE_SETTINGS = ("MEDIA_ROOT", "IMAGE_MAX_BYTES", "IMAGE_MAX_PIXELS", "IMAGE_ALLOWED_FORMATS")


def image_store_processes(workers: int, *, with_apps: bool = False) -> ProcessPoolExecutor:
    """`workers` processes to run `store_image` in, or a function around it (`core.processes`), with
    this process's image settings; `with_apps` for a function from a module that imports models
    (an import's, which assembles its samples and locates each path first). Checking and copying
    an image is mostly Python (Pillow's header parse, hashing, paths): in a thread it holds the
    interpreter lock the caller's own work needs (an import's writes); in a process it runs on
    another core."""
    return worker_processes(workers, setting_names=STORE_SETTINGS, with_apps=with_apps)


def image_content_type(image_format: str) -> str:
    """The MIME type for a format name as Pillow reports it ("PNG" → "image/png")."""
    return CONTENT_TYPES[image_format]
