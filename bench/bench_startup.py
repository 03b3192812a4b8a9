"""CLI start-up: how long `manage.py <command>` takes before the command does anything.

Times `manage.py <command> --help` (settings, apps, the command's own module, its arguments; then
exit) for every datafix management command, as a fresh process each time, and prints the slowest
command's best of BENCH_STARTUP_RUNS (default 3) beside the target (< 0.5 s; it was 1.65 s, 91 % of a
10,000-sample export). Child CPU seconds are printed too: a busy machine moves wall time.
Asserts nothing.
"""
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


def main() -> None:
    print(f"   load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}; best of {RUNS} runs per command")
    results = []
    for command in _commands():
        runs = sorted(_timed(command) for _ in range(RUNS))
        results.append((runs[0][0], runs[0][1], command))
    results.sort(reverse=True)
    for wall, cpu, command in results[:5]:
        print(f"   {command:<22} {wall:5.2f} s (cpu {cpu:4.2f} s)")
    wall, _, command = results[0]
    print(f"   slowest command start-up {wall:.2f} s ({command}) over {len(results)} commands  "
          f"target < {TARGET_S} s  {'met' if wall < TARGET_S else 'MISSED'}")
