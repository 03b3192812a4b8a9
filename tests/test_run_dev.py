"""`make run`'s process script: Ctrl-C stops the web server, the worker and the simulator, once each."""
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.security.servers import ROOT, free_port, subprocess_env, wait_until


def _session_members(sid: int) -> list[str]:
    out = subprocess.run(["pgrep", "-s", str(sid), "-a"], capture_output=True, text=True).stdout
    return out.splitlines()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _terminal_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.worker
def test_ctrl_c_stops_everything_it_started(tmp_path):
    port, sim_port = free_port(), free_port()
    env = subprocess_env(DATABASE_URL=None, REDIS_URL=None, OPENAI_BASE_URL=None, DATAFIX_VAR_DIR=str(tmp_path),
                         PORT=str(port), SIM_PORT=str(sim_port), DJANGO_SETTINGS_MODULE="config.settings.local")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    log_path = tmp_path / "run.log"
    log = log_path.open("w")
    # As from a terminal: SIGINT not ignored. A suite started in the background (`make test &`) passes
    # SIGINT on as ignored, and bash cannot trap a signal ignored on entry.
    script = subprocess.Popen(["bash", "scripts/run-dev.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True, preexec_fn=_terminal_signals)
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/login/")
                   and _answers(f"http://127.0.0.1:{sim_port}/v1/models")
                   and "ready" in log_path.read_text(),  # the worker is up too
                   timeout=90, what=f"web, simulator and worker to start (their log: {log_path})",
                   interval=0.2)

        os.killpg(script.pid, signal.SIGINT)  # what Ctrl-C in the terminal does (to the foreground group)
        script.wait(timeout=45)
        wait_until(lambda: not _session_members(script.pid), timeout=15,
                   what=f"everything to stop (see `pgrep -s {script.pid}`, log: {log_path})", interval=0.2)
        text = log_path.read_text()
        # The worker gets the script's one TERM: one warm shutdown, never the endless TERM loop of
        # a self-triggering trap, and no pool process killed under it.
        assert text.count("Warm shutdown") == 1, text[-3000:]
        assert "Cold shutdown" not in text and "exited with 'signal" not in text, text[-3000:]
    finally:
        for line in _session_members(script.pid):
            os.kill(int(line.split()[0]), signal.SIGKILL)
        log.close()
