"""Hand-built PNG files for the image-safety tests (no need to allocate the pixels they claim)."""
import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: Path, width: int, height: int, *, bit_depth: int = 8, color_type: int = 0,
              extra_chunks: list[tuple[bytes, bytes]] = (), rows: int | None = None) -> Path:
    """A PNG of `width`×`height` zero pixels; only `rows` rows of data are written when given.

    Zero rows compress ~1000:1, so a 20,000 × 20,000 image is a small file (a decompression bomb).
    """
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row_bytes = 1 + (width * channels * bit_depth + 7) // 8
    compressor = zlib.compressobj(9)
    zero_row = bytes(row_bytes)
    data = bytearray()
    for _ in range(height if rows is None else rows):
        data += compressor.compress(zero_row)
    data += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
    for kind, payload in extra_chunks:
        body += _chunk(kind, payload)
    body += _chunk(b"IDAT", bytes(data)) + _chunk(b"IEND", b"")
    path.write_bytes(body)
    return path


def ztxt_bomb_chunk(decompressed_size: int) -> tuple[bytes, bytes]:
    """A zTXt chunk whose text inflates to `decompressed_size` bytes."""
    compressor = zlib.compressobj(9)
    block = b"A" * (1 << 20)
    data = bytearray()
    for _ in range(decompressed_size // len(block)):
        data += compressor.compress(block)
    data += compressor.flush()
    return b"zTXt", b"comment\x00\x00" + bytes(data)
