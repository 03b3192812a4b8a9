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
    """

    def __init__(self):
        self._fh = tempfile.TemporaryFile(mode="w+b")
        self._end = 0
        self.offsets = array("q")
        self.lengths = array("l")
        self.sources = array("H")
        self._pending: list[bytes] = []  # written in one call per ~1 MB: a write per record costs more
        self._pending_bytes = 0

    def append(self, record: dict, source_index: int) -> None:
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        self.offsets.append(self._end)
        self.lengths.append(len(data))
        self.sources.append(source_index)
        self._pending.append(data)
        self._pending_bytes += len(data)
        self._end += len(data)
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

    def close(self) -> None:
        self._fh.close()
