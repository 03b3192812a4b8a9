"""`make run`'s process script: Ctrl-C stops the web server, the worker and the simulator, once each."""
import os
import signal
import sys
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_members(sid: int) -> list[str]:
    out = subprocess.run(["pgrep", "-s", str(sid), "-a"], capture_output=True, text=True).stdout
    return out.splitlines()


@pytest.mark.worker
def test_ctrl_c_stops_everything_it_started(tmp_path):
    port, sim_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "OPENAI_BASE_URL")}
    env.update({"DATAFIX_VAR_DIR": str(tmp_path), "PORT": str(port), "SIM_PORT": str(sim_port),
                "DJANGO_SETTINGS_MODULE": "config.settings.local"})
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    log = (tmp_path / "run.log").open("w")
    script = subprocess.Popen(["bash", "scripts/run-dev.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as response:
                    assert response.status == 200
                with urllib.request.urlopen(f"http://127.0.0.1:{sim_port}/v1/models", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-3000:]
                time.sleep(0.2)
        while "ready" not in (tmp_path / "run.log").read_text():  # the worker is up too
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(0.2)

        os.killpg(script.pid, signal.SIGINT)  # what Ctrl-C in the terminal does (to the foreground group)
        script.wait(timeout=45)
        deadline = time.monotonic() + 15
        while _session_members(script.pid):
            assert time.monotonic() < deadline, f"still running: {_session_members(script.pid)}"
            time.sleep(0.2)
        text = (tmp_path / "run.log").read_text()
        # The worker gets the script's one TERM: one warm shutdown, never the endless TERM loop of
        # a self-triggering trap, and no pool process killed under it.
        assert text.count("Warm shutdown") == 1, text[-3000:]
        assert "Cold shutdown" not in text and "exited with 'signal" not in text, text[-3000:]
    finally:
        for line in _session_members(script.pid):
            os.kill(int(line.split()[0]), signal.SIGKILL)
        log.close()
