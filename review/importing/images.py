"""Image paths: the file a record's image path means on this machine (relative to the import, mapped
by path prefixes, or found under `image_root`, always confined), stored by id and content; and the
one problem reported for absolute paths from another machine that nothing maps."""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

from core.errors import ApplicationError
from core.images import confine_path, store_image

from .planning import ImportOptions
from .report import ImportProblem
from .staging import Staging


def _absolute_parts(written: str) -> tuple[str, ...] | None:
    """The parts below the anchor of a path written absolute on some machine, else None."""
    text = written.strip()
    if re.match(r"^[A-Za-z]:[\\/]", text) or text.startswith("\\\\"):
        return PureWindowsPath(text).parts[1:]
    if text.startswith("/"):
        return PurePosixPath(text).parts[1:]
    return None


class KnownFolders:
    """Folders asked about once during one import: whether they exist (every record of a machine's
    absolute paths tries the same missing heads, `E:/天池比赛/…`, before the tail that exists) and
    where they really are (`confine_path`'s cache)."""

    def __init__(self):
        self._exists: dict[tuple[Path, str], bool] = {}
        self._resolved: dict = {}

    def exists(self, folder: Path, name: str) -> bool:
        """Whether `folder/name` is a folder."""
        key = (folder, name)
        if key not in self._exists:
            self._exists[key] = (folder / name).is_dir()
        return self._exists[key]

    def confine(self, root: Path, tail: Sequence[str]) -> Path:
        """`confine_path(root, "/".join(tail))`, with the folders resolved once per import."""
        return confine_path(root, "/".join(tail), resolved=self._resolved)


def _find_below(folder: Path, parts: Sequence[str], known: KnownFolders | None = None) -> Path | None:
    """The file `folder/<parts[i:]>` for the longest tail of `parts` that exists, confined to `folder`."""
    for i in range(len(parts)):
        tail = parts[i:]
        if any(part in ("", ".", "..") for part in tail):
            continue
        if known is not None and len(tail) > 1 and not known.exists(folder, tail[0]):
            continue
        if not os.path.isfile(os.path.join(folder, *tail)):
            continue  # a cheap stat first; only the file found is resolved and confined
        try:
            return known.confine(folder, tail) if known is not None else confine_path(folder, "/".join(tail))
        except ApplicationError:
            continue
    return None


class FilesByName:
    """The files under a folder by name, indexed on first use (in the import's staging file, not in
    memory): an image found by its name alone when its folders differ from the ones written in the
    record (only if the name is unique)."""

    def __init__(self, folder: Path, staging: Staging):
        self.folder = folder
        self.staging = staging
        self.built = False

    def find(self, name: str) -> Path | None:
        with self.staging.lock:
            db = self.staging.db
            if not self.built:
                db.execute("DELETE FROM image_names")
                batch = []
                for path in self.folder.rglob("*"):
                    if path.is_file():
                        batch.append((path.name, path.relative_to(self.folder).as_posix()))
                        if len(batch) >= 10000:
                            db.executemany("INSERT INTO image_names (name, path) VALUES (?, ?)", batch)
                            batch = []
                db.executemany("INSERT INTO image_names (name, path) VALUES (?, ?)", batch)
                db.execute("CREATE INDEX IF NOT EXISTS image_names_by_name ON image_names (name)")
                self.built = True
            hits = [self.folder / rel for (rel,) in db.execute(
                "SELECT path FROM image_names WHERE name = ? ORDER BY path", (name,))]
            total = len(hits)
        if total > 1:
            shown = "、".join(h.relative_to(self.folder).as_posix() for h in hits[:3])
            raise ApplicationError(f"--image-root 下有 {total} 个 {name}（{shown}），无法确定是哪一个", code="image_invalid")
        if hits and hits[0].resolve().is_relative_to(self.folder):
            return hits[0]
        return None


class Unmapped(Exception):
    """An absolute path from another machine and nothing given to map it."""


def locate_image(written: str, *, root: Path, base: Path, options: ImportOptions,
                 by_name: FilesByName | None = None, known: KnownFolders | None = None) -> Path:
    """The file an image path in a record means on this machine; ApplicationError if none.

    Relative paths are looked up under the import root, then the record's own folder, then
    `image_root`. Absolute paths (`E:\\…`, `/data/…`) go through `path_prefixes` (OLD=NEW), then are
    looked up under `image_root` by their longest tail that exists there, then by file name alone
    (`by_name`, when unique); every path is confined to the folder it is looked up in. An absolute
    path with neither option raises `Unmapped`.
    """
    parts = _absolute_parts(written)
    if parts is not None:
        normalized = written.strip().replace("\\", "/")
        for old, new in options.path_prefixes:
            old_norm = old.replace("\\", "/").rstrip("/")
            windows = "\\" in old or re.match(r"^[A-Za-z]:", old)
            head = normalized[:len(old_norm)]
            if (head.casefold() == old_norm.casefold()) if windows else (head == old_norm):
                rest = normalized[len(old_norm):]
                if rest == "" or rest.startswith("/"):
                    return confine_path(new, rest.lstrip("/"))
        if options.image_root is None:
            raise Unmapped(written)
        found = (_find_below(options.image_root, parts, known)
                 or (by_name.find(parts[-1]) if by_name and parts else None))
        if found is None:
            raise ApplicationError(f"在 --image-root {options.image_root} 下找不到图片 {parts[-1] if parts else written}"
                                   f"（原路径 {written}）", code="image_invalid")
        return found
    first = confine_path(root, written)
    if first.is_file():
        return first
    if base != root:
        second = confine_path(root, f"{base.relative_to(root).as_posix()}/{written}")
        if second.is_file():
            return second
    if options.image_root is not None:
        parts = PurePosixPath(written.replace("\\", "/")).parts
        found = (_find_below(options.image_root, parts, known)
                 or (by_name.find(parts[-1]) if by_name and parts else None))
        if found is not None:
            return found
    return first  # missing: store_image reports it


def locate_recorded_image(written: str, base: str, *, root: Path, options: ImportOptions,
                          by_name: FilesByName | None, known: KnownFolders | None = None) -> Path:
    """`locate_image` of an image path as a record wrote it, `base` the record file's folder
    relative to the import root ("." at the root)."""
    return locate_image(written, root=root, base=root if base == "." else root / base, options=options,
                        by_name=by_name, known=known)


def store_first_image(images: Sequence[tuple[str, str, str, int]], owner: str, *, root: Path, options: ImportOptions,
                      folder: str, by_name: FilesByName | None, known: KnownFolders | None = None) -> str:
    """Store the first of a sample's image paths — (as written, base, location, seq) — that resolves,
    for the sample `owner`; the first error otherwise."""
    first_error: Exception | None = None
    for written, base in dict.fromkeys((written, base) for written, base, _, _ in images):
        try:
            source = locate_recorded_image(written, base, root=root, options=options, by_name=by_name, known=known)
            return store_image(source, folder=folder, owner=owner)
        except (Unmapped, ApplicationError) as exc:
            first_error = first_error or exc
    raise first_error


# An image process's folders asked about, for the one import it serves (its pool ends with it).
_known_here: KnownFolders | None = None


def locate_and_store_or_none(written: str, base: str, owner: str, *, root: Path, options: ImportOptions,
                             folder: str) -> str | None:
    """What an import's image process runs for a sample's first image path: `locate_recorded_image`
    (without the index of files by name, which is in the import's staging file) and `store_image`.
    None where either fails: the import then stores that sample itself, trying every path in turn,
    and reports why. Locating is Python too (paths, stats): done here, it leaves the import's
    interpreter lock to its writes."""
    global _known_here
    if _known_here is None:
        _known_here = KnownFolders()
    try:
        source = locate_recorded_image(written, base, root=root, options=options, by_name=None, known=_known_here)
        return store_image(source, folder=folder, owner=owner)
    except (Unmapped, ApplicationError):
        return None


def unmapped_problem(count: int, image: str, location: str) -> ImportProblem:
    example = image.strip()
    windows = bool(re.match(r"^[A-Za-z]:[\\/]", example)) or example.startswith("\\\\")
    folder = str((PureWindowsPath if windows else PurePosixPath)(example).parent)
    return ImportProblem(
        location,
        f"{count} 条记录的图片是另一台机器上的绝对路径（如 {example}），这些样本没有导入。"
        "请加 --image-root DIR 指向本机存放这些图片的目录（按路径末尾的文件夹和文件名查找），"
        f"或加 --path-prefix '{folder}=本机目录' 替换路径前缀，再导入一次。",
    )
