"""The builder's spool: records pickled to a temporary file and read back by offset, so a build
holds offsets in memory, never the records."""
from __future__ import annotations

import os
import pickle
import tempfile
from array import array
from collections.abc import Iterable, Iterator


class Spool:
    """Records spooled to a temporary file, addressed by offset.

    pickle (not JSON) because it round-trips records several times faster and keeps any value a
    producer put in `meta` (dates, decimals); the file is private to this build and deleted after. Reads use os.pread (one syscall, no
    seek), so reading in shuffled order costs little more than reading in order.

    Each record may carry `extra` bytes stored right after it (the builder's finished row), read
    back on their own with `read_extra`; an entry may also be the `extra` alone, without the record.
    """

    def __init__(self):
        self._fh = tempfile.TemporaryFile(mode="w+b")
        self._end = 0
        self.offsets = array("q")
        self.lengths = array("q")
        self.extra_lengths = array("L")
        self.sources = array("H")
        self._pending: list[bytes] = []  # written in one call per ~1 MB: a write per record costs more
        self._pending_bytes = 0

    def append(self, record: dict | None, source_index: int, extra: bytes = b"") -> None:
        """Spool `record` (None: only its `extra`; `read` then cannot give it back)."""
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL) if record is not None else b""
        size = len(data) + len(extra)
        self.offsets.append(self._end)
        self.lengths.append(len(data))
        self.extra_lengths.append(len(extra))
        self.sources.append(source_index)
        self._pending.append(data)
        if extra:
            self._pending.append(extra)
        self._pending_bytes += size
        self._end += size
        if self._pending_bytes >= 1 << 20:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._fh.write(b"".join(self._pending))
            self._pending.clear()
            self._pending_bytes = 0
            self._fh.flush()

    def __len__(self) -> int:
        return len(self.offsets)

    def read(self, index: int) -> dict:
        self._flush()
        return pickle.loads(os.pread(self._fh.fileno(), self.lengths[index], self.offsets[index]))

    def read_many(self, indexes: Iterable[int]) -> Iterator[tuple[int, dict]]:
        self._flush()
        fd = self._fh.fileno()
        offsets, lengths = self.offsets, self.lengths
        for index in indexes:
            yield index, pickle.loads(os.pread(fd, lengths[index], offsets[index]))

    def read_extra(self, index: int) -> bytes:
        """The `extra` bytes spooled with record `index` (b"" if none)."""
        self._flush()
        size = self.extra_lengths[index]
        return os.pread(self._fh.fileno(), size, self.offsets[index] + self.lengths[index]) if size else b""

    def close(self) -> None:
        self._fh.close()
