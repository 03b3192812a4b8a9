"""`make test` on a fresh machine: the browser tests get Chromium installed when the machine allows it
(root with apt-get), else skip with one line saying how; with CI=true they never skip.

Chromium stays installed here: a missing one is simulated with CHROMIUM_PATH pointing at no file
(in a pytest subprocess), and apt-get, id and fc-list are stand-ins on PATH for the install script.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.security.servers import PYTHON, ROOT, subprocess_env

BROWSER_MODULES = ["tests/browser/test_jobs_browser.py", "tests/security/test_xss_browser.py"]


def run_browser_tests(tmp_path: Path, **env: str | None) -> subprocess.CompletedProcess:
    environment = subprocess_env(
        CHROMIUM_PATH=str(tmp_path / "no-chromium-here"),
        # SQLite in the child (a per-process file): never the parent's PostgreSQL test database.
        DATABASE_URL=None, REDIS_URL=None, DATABASE_TEST_NAME=None, **env,
    )
    return subprocess.run([PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", *BROWSER_MODULES],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)


def test_without_chromium_the_browser_tests_skip_with_one_line_saying_how(tmp_path):
    result = run_browser_tests(tmp_path, CI=None)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    lines = [line for line in output.splitlines() if "browser tests skipped" in line]
    assert len(lines) == 1, lines
    assert "no-chromium-here" in lines[0] and "apt-get install chromium fonts-wqy-zenhei" in lines[0]
    assert re.search(r"\b\d+ skipped\b", output) and " passed" not in output and "error" not in output.lower()


def test_with_ci_set_a_missing_chromium_fails_the_run(tmp_path):
    result = run_browser_tests(tmp_path, CI="true")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "CI is set and there is no Chromium" in output and "skipped" not in output


# --------------------------------------------------------------------------- the install step of `make test`
def fake_tools(tmp_path: Path, *, uid: int, fonts: str = "") -> tuple[dict, Path]:
    """A PATH whose apt-get only records its arguments, with `id -u` and fc-list answering as told."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "fc-list").write_text(f"#!/bin/sh\nprintf '%s\\n' '{fonts}'\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, log


def run_install_step(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts/browser-deps.sh")], env=subprocess_env(**env),
                          capture_output=True, text=True, timeout=60)


def test_as_root_with_apt_the_browser_and_font_are_installed(tmp_path):
    env, log = fake_tools(tmp_path, uid=0)
    result = run_install_step({**env, "CHROMIUM_PATH": str(tmp_path / "missing")})
    assert result.returncode == 0
    assert "install -y -qq chromium fonts-wqy-zenhei" in log.read_text()
    assert "installing chromium" in result.stdout


def test_as_root_a_missing_cjk_font_alone_is_installed(tmp_path):
    env, log = fake_tools(tmp_path, uid=0, fonts="DejaVu Sans")
    result = run_install_step({**env, "CHROMIUM_PATH": "/bin/sh"})  # "a browser" that exists
    assert result.returncode == 0 and "fonts-wqy-zenhei" in log.read_text()


@pytest.mark.parametrize("uid, fonts, chromium", [
    (1000, "", "missing"),  # not root: nothing to do here, the tests say how
    (0, "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc: WenQuanYi Zen Hei", "/bin/sh"),  # all present
])
def test_nothing_is_installed_when_it_cannot_be_or_need_not_be(tmp_path, uid, fonts, chromium):
    env, log = fake_tools(tmp_path, uid=uid, fonts=fonts)
    path = str(tmp_path / chromium) if chromium == "missing" else chromium
    result = run_install_step({**env, "CHROMIUM_PATH": path})
    assert result.returncode == 0 and result.stdout == "" and not log.exists()


def test_make_test_runs_the_install_step_before_pytest():
    recipe = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    steps = [line for line in recipe.splitlines() if "browser-deps.sh" in line or "-m pytest" in line]
    assert len(steps) == 2 and "browser-deps.sh" in steps[0], recipe
