"""The builder's spool: records pickled to a temporary file and read back by offset, so a build
holds offsets in memory, never the records."""
from __future__ import annotations

import mmap
import pickle
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator


class Spool:
    """Records spooled to a temporary file, addressed by offset.

    pickle (not JSON) because it round-trips records several times faster and keeps any value a
    producer put in `meta` (dates, decimals); the file is private to this build and deleted after.
    Reads go through a read-only memory map of the file, made once writing is done: reading in
    shuffled order then costs no system call per record (a pread each was a tenth of a log
    extraction). The map is file-backed, so it holds no more memory than reading the file would.

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
        self._map: mmap.mmap | None = None

    def append(self, record: dict | None, source_index: int, extra: bytes = b"") -> None:
        """Spool `record` (None: only its `extra`; `read` then cannot give it back)."""
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL) if record is not None else b""
        size = len(data) + len(extra)
        self.offsets.append(self._end)
        self.lengths.append(len(data))
        self.extra_lengths.append(len(extra))
        self.sources.append(source_index)
        if data:
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

    def _view(self) -> mmap.mmap | bytes:
        """The file as written so far, to slice records from."""
        self._flush()
        if self._map is None or len(self._map) != self._end:
            if self._map is not None:
                self._map.close()
            self._map = mmap.mmap(self._fh.fileno(), self._end, access=mmap.ACCESS_READ) if self._end else None
        return self._map if self._map is not None else b""

    def __len__(self) -> int:
        return len(self.offsets)

    def read(self, index: int) -> dict:
        start = self.offsets[index]
        return pickle.loads(self._view()[start:start + self.lengths[index]])

    def read_many(self, indexes: Iterable[int]) -> Iterator[tuple[int, dict]]:
        view = self._view()
        offsets, lengths = self.offsets, self.lengths
        for index in indexes:
            start = offsets[index]
            yield index, pickle.loads(view[start:start + lengths[index]])

    def read_extra(self, index: int) -> bytes:
        """The `extra` bytes spooled with record `index` (b"" if none)."""
        return self.extra_reader()(index)

    def extra_reader(self) -> Callable[[int], bytes]:
        """`read_extra` for reading many in a row, once the spooling is done."""
        view, offsets, lengths, extra_lengths = self._view(), self.offsets, self.lengths, self.extra_lengths

        def read_extra(index: int) -> bytes:
            start = offsets[index] + lengths[index]
            return view[start:start + extra_lengths[index]]
        return read_extra

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
        self._fh.close()
