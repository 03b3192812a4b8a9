"""Files a trainer can trust: a killed write leaves no file under the final name, leftovers are
cleaned, permissions follow the umask."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from core import files
from pipelines.datasets import formats
from pipelines.datasets.builder import build_dataset
from pipelines.datasets.options import BuildOptions, Source

ROOT = Path(__file__).resolve().parents[3]


def _records(n):
    return [{"id": str(i), "prompt": f"问题 {i}", "response": f"回答 {i}" * 5} for i in range(n)]


def _interrupt_at_row(monkeypatch, n):
    """KeyboardInterrupt when the n-th row is written (rows converted earlier or at write time)."""
    calls = {"n": 0}

    def wrap(real):
        def write(self, row):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
            return real(self, row)
        return write

    monkeypatch.setattr(formats.RowWriter, "write", wrap(formats.RowWriter.write))
    monkeypatch.setattr(formats.RowWriter, "write_encoded", wrap(formats.RowWriter.write_encoded))


def _wait_for(path: Path, deadline_seconds: float = 30.0) -> None:
    end = time.monotonic() + deadline_seconds
    while not path.exists():
        if time.monotonic() > end:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.02)


def test_a_writer_killed_mid_write_leaves_no_file_under_the_final_name(tmp_path):
    """A real SIGKILL in the middle of writing rows: the final name never exists; the next write
    into the folder removes the leftover."""
    out, ready = tmp_path / "data" / "train.json", tmp_path / "ready"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from pipelines.datasets import formats

        def rows():
            for i in range(1000):
                yield {{"instruction": f"q{{i}}", "input": "", "output": "a" * 100}}
                if i == 500:
                    open({str(ready)!r}, "w").close()
                    time.sleep(600)  # killed here

        formats.write_rows({str(out)!r}, rows())
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        _wait_for(ready)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(files.PARTIAL_PREFIX)

    formats.write_rows(tmp_path / "data" / "other.json", [{"instruction": "q", "input": "", "output": "a"}])
    assert sorted(p.name for p in out.parent.iterdir()) == ["other.json"]


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    def rows():
        yield {"a": 1}
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        formats.write_rows(tmp_path / "d" / "x.jsonl", rows())
    assert list((tmp_path / "d").iterdir()) == []


def test_a_builder_write_that_fails_midway_leaves_no_partial_split_file(tmp_path):
    def records():
        yield from _records(50)
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError):
        build_dataset([Source("s", records)], BuildOptions(), output=tmp_path / "out" / "data.json")
    assert not any(p.name == "data.json" for p in tmp_path.rglob("*"))


def test_a_builder_write_interrupted_while_writing_rows_leaves_no_file(tmp_path, monkeypatch):
    """The rows are written after all steps ran: a failure there must not leave data.json."""
    _interrupt_at_row(monkeypatch, 30)
    with pytest.raises(KeyboardInterrupt):
        build_dataset([Source("s", _records(50))], BuildOptions(), output=tmp_path / "out" / "data.json")
    assert [p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")] == []
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


@pytest.mark.django_db
def test_extract_from_logs_killed_midway_leaves_no_output(tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = [json.dumps({"success": True, "prompt": f"问题{i}", "response": {"answer": "回答" * 60}, "model": "m"},
                        ensure_ascii=False) for i in range(40)]
    (logs / "calls.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "train.json"
    _interrupt_at_row(monkeypatch, 20)
    with pytest.raises(KeyboardInterrupt):
        call_command("extract_from_logs", log_dir=str(logs), output=str(out))
    assert not out.exists()
    assert not any(p.name == "train.json" for p in tmp_path.rglob("*"))


def test_files_follow_the_process_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "a" / "train.json"
        formats.write_rows(path, [{"x": 1}])
        formats.write_dataset_info(tmp_path / "a" / "dataset_info.json", {"d": {"file_name": "train.json"}})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a" / "dataset_info.json").stat().st_mode & 0o777 == 0o644


def test_leftovers_of_a_live_writer_are_kept(tmp_path):
    live = tmp_path / files.partial_name("x.json")  # this process: alive
    live.write_text("")
    assert files.remove_leftovers(tmp_path) == []
    assert live.exists()


def test_no_clobber_write_refuses_an_existing_file(tmp_path):
    files.atomic_write_text(tmp_path / "d" / "a.json", "first")
    with pytest.raises(FileExistsError):
        files.atomic_write_text(tmp_path / "d" / "a.json", "second", overwrite=False)
    assert (tmp_path / "d" / "a.json").read_text() == "first"
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["a.json"]
