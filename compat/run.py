"""`make compat`: run every compat/check_*.py against one work folder, in the compat virtualenv.

    var/compat-venv/bin/python compat/run.py WORKDIR

Each check is a script of its own (`check_exports.py` loads every export in LLaMA-Factory and TRL);
a new check is a new `check_<name>.py` taking WORKDIR as its argument and exiting non-zero on failure.
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(workdir: str) -> int:
    failed = []
    for script in sorted(HERE.glob("check_*.py")):
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script), workdir]).returncode != 0:
            failed.append(script.name)
    print(f"\ncompat: {'all checks passed' if not failed else 'FAILED: ' + ', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(HERE.parent / "var" / "compat")))
