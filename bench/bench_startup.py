"""CLI start-up: how long `manage.py <command>` takes before the command does anything.

Times `manage.py <command> --help` (settings, apps, the command's own module, its arguments; then
exit) for every datafix management command, as a fresh process each time, and prints the slowest
command's best of BENCH_STARTUP_RUNS (default 3) beside the target (< 0.5 s; it was 1.65 s, 91 % of a
10,000-sample export). Child CPU seconds are printed too: a busy machine moves wall time.
Asserts nothing.

The project's modules are compiled to bytecode first, as Python does on a command's first run and
keeps in `__pycache__` for the next ones: start-up is measured as a user meets it from the second
command on. Where PYTHONDONTWRITEBYTECODE is set (these machines set it) Python never writes that
cache, and every start would compile the project's ~250 modules again (~0.07 s of each).
"""
import compileall
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_STARTUP_RUNS", "3"))
TARGET_S = 0.5


def _commands() -> list[str]:
    return sorted(path.stem for app in ("review", "pipelines")
                  for path in (ROOT / app / "management" / "commands").glob("*.py") if not path.stem.startswith("_"))


def _timed(command: str) -> tuple[float, float]:
    """Wall and CPU seconds of one `manage.py <command> --help`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", command, "--help"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


PROJECT_PACKAGES = ("config", "core", "review", "pipelines")


def _compile_project() -> bool:
    """Write the project's bytecode cache (what a first run leaves behind); False if it could not."""
    return all(compileall.compile_dir(ROOT / package, quiet=1) for package in PROJECT_PACKAGES)


def main() -> None:
    compiled = _compile_project()
    print(f"   project bytecode {'compiled first' if compiled else 'NOT compiled (each start compiles it)'}")
    print(f"   load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}; best of {RUNS} runs per command")
    # In rounds, every command once per round, not a command's runs back to back: a shared VM slows
    # down for seconds at a time, which would otherwise spoil all of one command's runs.
    commands = _commands()
    runs: dict[str, list[tuple[float, float]]] = {command: [] for command in commands}
    for _ in range(RUNS):
        for command in commands:
            runs[command].append(_timed(command))
    results = sorted(((*min(timings), command) for command, timings in runs.items()), reverse=True)
    for wall, cpu, command in results[:5]:
        print(f"   {command:<22} {wall:5.2f} s (cpu {cpu:4.2f} s)")
    wall, _, command = results[0]
    print(f"   slowest command start-up {wall:.2f} s ({command}) over {len(results)} commands  "
          f"target < {TARGET_S} s  {'met' if wall < TARGET_S else 'MISSED'}")
