"""Files a trainer can trust: written under a temporary name and renamed into place.

    with atomic_open(path) as fh:          # fh writes ".partial-…-train.json" beside path
        fh.write("…")                      # renamed to path on success, removed on an exception
    atomic_write_text(path, text)

A process killed mid-write leaves only a `.partial-…` file, never a half file under the final name.
`remove_leftovers(folder)` deletes the partials of writers that are gone; every atomic write calls it
for its own folder first, so leftovers disappear the next time anything is written there.

Files are created with mode 0666 and folders 0777, both less the process umask (what `open()` and
`mkdir` do), so a shared EXPORT_ROOT is readable by the training user; `tempfile.mkstemp` would leave
0600 files.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

PARTIAL_PREFIX = ".partial-"
# A partial whose writer cannot be checked (another host on a shared mount) is a leftover after this.
STALE_AFTER_SECONDS = 24 * 3600


def _host() -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in socket.gethostname())[:40] or "host"


def partial_name(final_name: str) -> str:
    """`.partial-<host>-<pid>-<random>-<final name>`: who writes it, so a sweep can tell if they are gone."""
    return f"{PARTIAL_PREFIX}{_host()}-{os.getpid()}-{secrets.token_hex(4)}-{final_name}"


def _writer_gone(name: str, mtime: float) -> bool:
    try:
        host, pid, _rest = name[len(PARTIAL_PREFIX):].split("-", 2)
        pid_number = int(pid)
    except ValueError:
        return time.time() - mtime > STALE_AFTER_SECONDS
    if host != _host():
        return time.time() - mtime > STALE_AFTER_SECONDS
    if pid_number == os.getpid():
        return False
    try:
        os.kill(pid_number, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Delete the `.partial-*` files and folders in `folder` whose writer is gone; returns them."""
    import shutil

    folder = Path(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if not entry.name.startswith(PARTIAL_PREFIX):
            continue
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        if not _writer_gone(entry.name, mtime):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def make_dirs(folder: str | Path) -> Path:
    """mkdir -p with the umask's permissions (0777 less umask)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def create_file(path: str | Path, mode: str = "w", **kwargs) -> IO:
    """Open a new file (refusing an existing one) with mode 0666 less the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o666)
    try:
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, overwrite: bool = True, **kwargs) -> Iterator[IO]:
    """Write `path` through a temporary file in the same folder, renamed into place on success.

    Text mode defaults to UTF-8 with "\\n" line ends. With `overwrite=False` an existing `path` is
    never replaced: FileExistsError, and the temporary file is removed.
    """
    path = Path(path)
    make_dirs(path.parent)
    remove_leftovers(path.parent)
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("newline", "\n")
    tmp = path.with_name(partial_name(path.name))
    fh = create_file(tmp, mode, **kwargs)
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path exists: no clobbering, even against a racing writer
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, *, overwrite: bool = True) -> Path:
    with atomic_open(path, "w", overwrite=overwrite) as fh:
        fh.write(text)
    return Path(path)
