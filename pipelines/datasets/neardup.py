"""Near-duplicate detection with MinHash + LSH over character n-grams.

Character n-grams (default 3) work for Chinese, which has no spaces to split words on. Text is
normalised first (lower-case, whitespace runs collapsed). Signatures follow datasketch's
"affine32" MinHash scheme, computed with numpy a batch of texts per pass
(`MinHasher.signatures`), which keeps 100,000 prompts fast; the shingle hashes are a fixed
polynomial over code points, so signatures — and therefore clusters and the builder's splits — are
the same in every process (Python's own `hash()` is salted per process).

LSH: datasketch's MinHashLSH chooses the bands × rows for the threshold; the band tables are
plain dicts of 64-bit band keys (streaming, `NearDupIndex`) or sorted numpy arrays (bulk,
`near_duplicate_clusters`), because datasketch's set-based storage costs ~4.5 KB per text and
several times the time. Candidates are confirmed with the Jaccard similarity estimated from the two
signatures, so a reported pair really is above the threshold (up to MinHash's estimation error).

Memory: per indexed text one signature (`num_perm` × 4 bytes, 512 bytes at the default 128) plus
one integer per band (~1 KB in all); texts themselves are not kept.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Hashable

from config.lazy import lazy_module

# Imported on first use (with scipy, most of a management command's start-up otherwise: config/lazy.py).
np = lazy_module("numpy")
datasketch = lazy_module("datasketch")

DEFAULT_THRESHOLD = 0.8
DEFAULT_NUM_PERM = 128
DEFAULT_NGRAM = 3
# Windows permuted at once: BLOCK × num_perm × 8 bytes (32 MB at the defaults).
BLOCK = 32_768
# Texts whose signatures are computed together.
BATCH_TEXTS = 256

_MAX_HASH = (1 << 32) - 1
_WHITESPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower-case and collapse whitespace, so spacing and case differences do not count."""
    return _WHITESPACE.sub(" ", text or "").strip().lower()


class MinHasher:
    """Computes MinHash signatures (uint32 arrays of length `num_perm`) of texts."""

    def __init__(self, num_perm: int = DEFAULT_NUM_PERM, ngram: int = DEFAULT_NGRAM, seed: int = 1):
        self.num_perm = num_perm
        self.ngram = ngram
        rng = np.random.RandomState(seed)
        # datasketch's "affine32" scheme: h(x) = (a*x + b) mod 2^32 with odd a (a bijection).
        self._a = rng.randint(0, 1 << 31, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._b = rng.randint(0, 1 << 32, size=num_perm, dtype=np.uint64)
        self._a32, self._b32 = self._a.astype(np.uint32), self._b.astype(np.uint32)
        self._powers = np.array([pow(1_000_003, ngram - 1 - j, 1 << 64) for j in range(ngram)], dtype=np.uint64)

    def signature(self, text: str) -> np.ndarray:
        """The MinHash signature of one text (uint32, length num_perm)."""
        return self.signatures([text])[0]

    def signatures(self, texts: list[str]) -> np.ndarray:
        """Signatures of many texts at once, shape (len(texts), num_perm).

        All texts are hashed in one numpy pass over their concatenated code points (windows that
        would cross from one text into the next are masked out), then permuted and reduced per text
        in blocks of at most BLOCK windows, so memory stays bounded however long a text is.
        """
        n = self.ngram
        normalized = [normalize(t) for t in texts]
        # Texts shorter than n are padded, so every text has at least one shingle.
        padded = [t if len(t) >= n else t + "\x00" * (n - len(t)) for t in normalized]
        lengths = np.fromiter((len(t) for t in padded), dtype=np.int64, count=len(padded))
        joined = "".join(padded)
        try:
            data = joined.encode("utf-32-le")
        except UnicodeEncodeError:  # a lone surrogate is one code point all the same
            data = joined.encode("utf-32-le", "surrogatepass")
        codes = np.frombuffer(data, dtype=np.uint32).astype(np.uint64)
        total = codes.size
        windows = total - n + 1
        # Polynomial hash of every window (uint64 arithmetic wraps, which is what we want).
        h = codes[:windows] * self._powers[0]
        for j in range(1, n):
            h += codes[j:j + windows] * self._powers[j]
        # Mix the bits so that nearby code points spread over the 32-bit range.
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h &= np.uint64(_MAX_HASH)
        per_text = lengths - n + 1
        valid = np.ones(windows, dtype=bool)
        ends = np.cumsum(lengths)
        crossing = (ends[:, None] - np.arange(1, n)[None, :]).ravel()
        valid[crossing[crossing < windows]] = False
        hashes = h[valid]
        segment = np.repeat(np.arange(len(texts)), per_text)
        return self._segment_min(hashes, segment, len(texts))

    def _segment_min(self, hashes: np.ndarray, segment: np.ndarray, count: int) -> np.ndarray:
        # (a*x + b) mod 2^32 is exactly uint32 arithmetic with wrap-around: half the memory traffic.
        # Laid out (num_perm, windows) so each reduction runs along contiguous memory.
        hashes = hashes.astype(np.uint32)
        out = np.full((self.num_perm, count), np.iinfo(np.uint32).max, dtype=np.uint32)
        for lo in range(0, hashes.size, BLOCK):
            hi = min(lo + BLOCK, hashes.size)
            permuted = np.multiply.outer(self._a32, hashes[lo:hi])
            permuted += self._b32[:, None]
            segs = segment[lo:hi]
            starts = np.concatenate(([0], np.flatnonzero(np.diff(segs)) + 1))
            ids = segs[starts]
            out[:, ids] = np.minimum(out[:, ids], np.minimum.reduceat(permuted, starts, axis=1))
        return np.ascontiguousarray(out.T)



def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)


class Banding:
    """LSH bands for a threshold: datasketch chooses bands × rows (its weighted optimum of false
    positives and negatives); each band of a signature becomes one 64-bit integer key."""

    def __init__(self, threshold: float, num_perm: int):
        self.ranges = datasketch.MinHashLSH(threshold=threshold, num_perm=num_perm).hashranges
        rng = np.random.RandomState(7)
        self._multipliers = rng.randint(1, 1 << 62, size=num_perm, dtype=np.uint64) | np.uint64(1)

    def column(self, signatures: np.ndarray, band: int) -> np.ndarray:
        """The keys of one band for all signatures (bulk clustering goes band by band)."""
        a, b = self.ranges[band]
        return signatures[:, a:b].astype(np.uint64) @ self._multipliers[a:b]

    def keys(self, signatures: np.ndarray) -> np.ndarray:
        """Band keys, shape (len(signatures), bands); a rare collision only adds a candidate."""
        wide = signatures.astype(np.uint64)
        return np.stack([wide[:, a:b] @ self._multipliers[a:b] for a, b in self.ranges], axis=1)


class NearDupIndex:
    """A streaming LSH index of signatures keyed by anything hashable.

        index = NearDupIndex(threshold=0.8)
        match = index.find(text)          # key of an indexed near-duplicate, or None
        index.add(key, text)

    Compact on purpose (a big log folder may index hundreds of thousands of prompts): per indexed
    text one signature in a chunked uint32 array and one int per band in plain dicts — about
    1 KB, against ~4.5 KB in datasketch's MinHashLSH storage of Python sets.
    """

    CHUNK = 65_536

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, num_perm: int = DEFAULT_NUM_PERM,
                 ngram: int = DEFAULT_NGRAM):
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = threshold
        self.hasher = MinHasher(num_perm=num_perm, ngram=ngram)
        self.banding = Banding(threshold, num_perm)
        self._tables: list[dict[int, int | list[int]]] = [{} for _ in self.banding.ranges]
        self._chunks: list[np.ndarray] = []
        self._keys: list[Hashable] = []

    def __len__(self) -> int:
        return len(self._keys)

    def _signature_at(self, index: int) -> np.ndarray:
        return self._chunks[index // self.CHUNK][index % self.CHUNK]

    def _candidates(self, band_keys) -> set[int]:
        found: set[int] = set()
        for table, key in zip(self._tables, band_keys):
            hit = table.get(key)
            if hit is None:
                continue
            if isinstance(hit, int):
                found.add(hit)
            else:
                found.update(hit)
        return found

    def matches(self, signature: np.ndarray, band_keys=None) -> list[Hashable]:
        """Indexed keys whose estimated Jaccard similarity reaches the threshold, oldest first."""
        if band_keys is None:
            band_keys = self.banding.keys(signature[None, :])[0].tolist()
        found = sorted(i for i in self._candidates(band_keys)
                       if jaccard_estimate(self._signature_at(i), signature) >= self.threshold)
        return [self._keys[i] for i in found]

    def find(self, text: str) -> Hashable | None:
        found = self.matches(self.hasher.signature(text))
        return found[0] if found else None

    def insert(self, key: Hashable, signature: np.ndarray, band_keys=None) -> None:
        if band_keys is None:
            band_keys = self.banding.keys(signature[None, :])[0].tolist()
        index = len(self._keys)
        if index % self.CHUNK == 0:
            self._chunks.append(np.empty((self.CHUNK, self.hasher.num_perm), dtype=np.uint32))
        self._chunks[-1][index % self.CHUNK] = signature
        self._keys.append(key)
        for table, band_key in zip(self._tables, band_keys):
            hit = table.get(band_key)
            if hit is None:
                table[band_key] = index
            elif isinstance(hit, int):
                table[band_key] = [hit, index]
            else:
                hit.append(index)

    def add(self, key: Hashable, text: str) -> None:
        self.insert(key, self.hasher.signature(text))


class NearDupRemover:
    """Streaming removal: keeps a text unless it is a near-duplicate of an earlier kept one.

    `check(key, text)` returns None to keep (and indexes the text) or the key of the kept text it
    duplicates. `clusters` maps each kept key that had duplicates to the removed keys.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, num_perm: int = DEFAULT_NUM_PERM,
                 ngram: int = DEFAULT_NGRAM):
        self.index = NearDupIndex(threshold, num_perm, ngram)
        self.clusters: dict[Hashable, list[Hashable]] = {}

    def check(self, key: Hashable, text: str) -> Hashable | None:
        return self.check_many([(key, text)])[0]

    def check_many(self, items: list[tuple[Hashable, str]]) -> list[Hashable | None]:
        """`check` for many items in order, with their signatures computed in one batch."""
        if not items:
            return []
        signatures = self.index.hasher.signatures([text for _, text in items])
        band_keys = self.index.banding.keys(signatures).tolist()
        return [self._check(key, sig, keys) for (key, _), sig, keys in zip(items, signatures, band_keys)]

    def _check(self, key: Hashable, signature: np.ndarray, band_keys: list[int]) -> Hashable | None:
        found = self.index.matches(signature, band_keys)
        if found:
            kept = found[0]  # the earliest kept text it resembles
            self.clusters.setdefault(kept, []).append(key)
            return kept
        self.index.insert(key, signature, band_keys)
        return None


def near_duplicate_clusters(items: Iterable[tuple[Hashable, str]], threshold: float = DEFAULT_THRESHOLD,
                            num_perm: int = DEFAULT_NUM_PERM, ngram: int = DEFAULT_NGRAM) -> list[list[Hashable]]:
    """Group all items into clusters of near-duplicates (transitively); only clusters of 2+ returned.

    Each cluster lists its keys in input order; clusters are ordered by their first key's position.
    Offline, so done in bulk with numpy: datasketch chooses the bands × rows for the threshold,
    records sharing a band are sorted next to each other, and each candidate is confirmed against
    the first and the previous record of its run by the estimated Jaccard similarity. Memory: one
    signature per item (num_perm × 4 bytes) and a few integers per item and band.
    """
    hasher = MinHasher(num_perm=num_perm, ngram=ngram)
    keys: list[Hashable] = []
    chunks: list[np.ndarray] = []
    batch: list[str] = []
    for key, text in items:
        keys.append(key)
        batch.append(text)
        if len(batch) == BATCH_TEXTS:
            chunks.append(hasher.signatures(batch))
            batch = []
    if batch:
        chunks.append(hasher.signatures(batch))
    count = len(keys)
    if count < 2:
        return []
    signatures = np.concatenate(chunks)
    del chunks
    banding = Banding(threshold, num_perm)
    positions = np.arange(count)
    verified = []
    for band in range(len(banding.ranges)):
        band_keys = banding.column(signatures, band)
        order = np.argsort(band_keys, kind="stable")
        sorted_keys = band_keys[order]
        same = np.concatenate(([False], sorted_keys[1:] == sorted_keys[:-1]))
        run_first = np.maximum.accumulate(np.where(same, 0, positions))
        members = np.flatnonzero(same)
        for left in (order[run_first[members]], order[members - 1]):
            right = order[members]
            similarity = np.count_nonzero(signatures[left] == signatures[right], axis=1) / num_perm
            keep = similarity >= threshold
            low, high = np.minimum(left[keep], right[keep]), np.maximum(left[keep], right[keep])
            # Verified pairs as one integer each, so duplicates across bands collapse cheaply.
            verified.append(np.unique(low.astype(np.int64) * count + high))
    codes = np.unique(np.concatenate(verified)) if verified else np.empty(0, dtype=np.int64)
    pairs = np.stack([codes // count, codes % count], axis=1)

    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs.tolist():
        ra, rb = root(a), root(b)
        if ra != rb:
            # The earlier item stays the root, so cluster ids do not depend on pair order.
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(count):
        groups.setdefault(root(i), []).append(i)
    clusters = [members for members in groups.values() if len(members) > 1]
    clusters.sort(key=lambda members: members[0])
    return [[keys[i] for i in members] for members in clusters]
