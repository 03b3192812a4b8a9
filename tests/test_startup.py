"""A management command that serves no page starts without importing the web side or the heavy
libraries (config/startup.py, config/lazy.py); `check` still checks everything."""
import os
import subprocess
import sys
from pathlib import Path

from config.lazy import lazy_module

BASE_DIR = Path(__file__).resolve().parent.parent
HEAVY = ("openai", "aiohttp", "numpy", "scipy", "datasketch", "drf_spectacular.views", "rest_framework.serializers",
         "config.urls", "pipelines.jobs.views", "review.views")


# Runs manage.py as `python manage.py …` would, then lists every module the process imported.
RUN_AND_LIST = ("import atexit, runpy, sys; "
                "atexit.register(lambda: print('MODULES', *sorted(sys.modules), file=sys.stderr)); "
                "sys.argv = ['manage.py', *sys.argv[1:]]; runpy.run_path('manage.py', run_name='__main__')")


def imported_by(*args: str) -> tuple[set[str], str]:
    """The modules `manage.py <args>` imports, and its output."""
    result = subprocess.run([sys.executable, "-c", RUN_AND_LIST, *args], cwd=BASE_DIR, capture_output=True,
                            text=True, timeout=120, env={**os.environ})
    listed = [line for line in result.stderr.splitlines() if line.startswith("MODULES ")]
    assert listed, result.stderr[-2000:]
    return set(listed[-1].split()[1:]), result.stdout + result.stderr


def test_a_command_starts_without_the_web_side_or_heavy_libraries(tmp_path):
    modules, output = imported_by("import_classification", str(tmp_path / "missing"), "--dataset", "x")
    assert "路径不存在" in output  # it ran: its own error, after Django's checks
    assert "review.importing.importer" in modules
    assert not [name for name in HEAVY if name in modules]


def test_a_command_runs_collecting_garbage_with_what_start_up_made_frozen():
    """manage.py keeps the garbage collector off while Django and the apps load, then freezes what
    they made (it lives as long as the process) and turns it back on: the start-up's collections,
    and the one at exit, no longer walk every module, class and function (~0.1 s of every
    command). The command itself runs collecting, so a long import frees what it drops."""
    code = "import gc; print('GC', gc.isenabled(), gc.get_freeze_count())"
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code],
                            cwd=BASE_DIR, capture_output=True, text=True, timeout=120, env={**os.environ})
    line = [line for line in result.stdout.splitlines() if line.startswith("GC ")]
    assert line, result.stdout + result.stderr
    _, enabled, frozen = line[0].split()
    assert enabled == "True"
    assert int(frozen) > 50_000  # Django and the apps: ~90,000 objects


def test_check_still_imports_and_checks_the_urls():
    modules, output = imported_by("check")
    assert "System check identified no issues" in output
    assert {"config.urls", "pipelines.jobs.views", "review.views"} <= modules


def test_a_lazy_module_imports_on_first_use():
    module = lazy_module("json")
    assert "not imported yet" in repr(module)
    assert module.dumps({"类别": 1}, ensure_ascii=False) == '{"类别": 1}'
    assert "imported" in repr(module) and module.loads("[1]") == [1]
