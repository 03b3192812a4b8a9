"""Log extraction and near-dedup speed (`make bench` / `python -m bench extraction`).

Prints: records/s for extracting 200,000 generated log records through the builder (read →
dedup → shuffle → validate → write alpaca jsonl) next to a bare json-lines read + write of the
same files (target: within 2×; best of three interleaved runs each, the machine being shared; the
CPU-time ratio, which another process on the machine disturbs less, is printed beside it), and
the time to near-dedup 100,000 prompts. Figures only.
"""
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

LOG_RECORDS = 200_000
FILES = 8
NEAR_DUP_PROMPTS = 100_000
CJK = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定"
       "行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外")


def _text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(CJK) for _ in range(n))


def write_logs(folder: Path, records: int, files: int, seed: int = 0) -> int:
    """The team's logger format: ~200-character prompts, ~400-character answers, some failures."""
    rng = random.Random(seed)
    prompts = [_text(rng, 200) for _ in range(2000)]
    answers = [_text(rng, 400) for _ in range(2000)]
    size = 0
    per_file = records // files
    for f in range(files):
        path = folder / f"calls_{f:02d}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for i in range(per_file):
                n = f * per_file + i
                call = {"timestamp": "2025-03-01T10:00:00", "model": "qwen-72b-chat", "success": n % 50 != 0,
                        "prompt": f"第{n}条：" + prompts[n % 2000], "response": {"answer": answers[(n * 7) % 2000]}}
                fh.write(json.dumps(call, ensure_ascii=False) + "\n")
        size += path.stat().st_size
    return size


def bare_read_write(folder: Path, output: Path) -> int:
    """The floor: parse every line and write it back as JSON lines, with the two I/O habits the
    builder has too (one encoder, lines written 512 at a time), so the ratio measures the
    extraction's own work rather than json.dumps' per-call encoder and per-line write calls."""
    encode = json.JSONEncoder(ensure_ascii=False).encode
    count = 0
    with open(output, "w", encoding="utf-8") as out:
        for path in sorted(folder.glob("*.jsonl")):
            with open(path, encoding="utf-8") as fh:
                lines = []
                for line in fh:
                    lines.append(encode(json.loads(line)) + "\n")
                    count += 1
                    if len(lines) >= 512:
                        out.write("".join(lines))
                        lines.clear()
                out.write("".join(lines))
    return count


def main() -> None:
    from pipelines.datasets.builder import build_dataset
    from pipelines.datasets.logs import LogReader
    from pipelines.datasets.neardup import NearDupRemover
    from pipelines.datasets.options import BuildOptions, Source

    tmp = Path(tempfile.mkdtemp(prefix="bench-extraction-"))
    try:
        logs = tmp / "logs"
        logs.mkdir()
        size = write_logs(logs, LOG_RECORDS, FILES)
        print(f"log folder: {LOG_RECORDS:,} records in {FILES} files, {size / 1e6:.0f} MB")

        # The machine is shared: each side runs three times, interleaved, and the fastest run counts.
        bare_runs, extract_runs, bare_cpu, extract_cpu, total = [], [], [], [], 0
        for _ in range(3):
            started, cpu = time.perf_counter(), time.process_time()
            bare = bare_read_write(logs, tmp / "bare.jsonl")
            bare_runs.append(time.perf_counter() - started)
            bare_cpu.append(time.process_time() - cpu)
            started, cpu = time.perf_counter(), time.process_time()
            result = build_dataset([Source("logs", LogReader(logs))], BuildOptions(format="alpaca"),
                                   output=tmp / "out" / "alpaca.jsonl")
            extract_runs.append(time.perf_counter() - started)
            extract_cpu.append(time.process_time() - cpu)
            total = result.total
        bare_seconds, seconds = min(bare_runs), min(extract_runs)
        print(f"bare json-lines read+write: {bare / bare_seconds:,.0f} records/s ({bare_seconds:.1f} s)")
        print(f"extract_from_logs (dedup + shuffle + validate + write alpaca): "
              f"{LOG_RECORDS / seconds:,.0f} records/s ({seconds:.1f} s, {total:,} written) "
              f"= {seconds / bare_seconds:.2f}x the bare read+write (target ≤ 2x); "
              f"CPU time {min(extract_cpu) / min(bare_cpu):.2f}x")

        rng = random.Random(1)
        bases = [_text(rng, 120) for _ in range(NEAR_DUP_PROMPTS // 5)]
        prompts = [bases[i % len(bases)] + _text(rng, 3) if i >= len(bases) else bases[i] for i in range(NEAR_DUP_PROMPTS)]
        remover = NearDupRemover()
        started = time.perf_counter()
        removed = 0
        for start in range(0, NEAR_DUP_PROMPTS, 256):  # batches, as the builder feeds it
            batch = list(enumerate(prompts[start:start + 256], start=start))
            removed += sum(match is not None for match in remover.check_many(batch))
        seconds = time.perf_counter() - started
        print(f"near-dedup of {NEAR_DUP_PROMPTS:,} prompts (~120 characters, 3-gram MinHash/LSH, threshold 0.8): "
              f"{seconds:.1f} s ({NEAR_DUP_PROMPTS / seconds:,.0f} prompts/s), {removed:,} near-duplicates removed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    django.setup()
    main()
