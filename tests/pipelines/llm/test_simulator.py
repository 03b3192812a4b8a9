"""The simulator over real HTTP: endpoints, determinism, vision answers, counting."""
import base64
import io
import json
import urllib.error
import urllib.request

import pytest
from PIL import Image

from review.image_marker import draw_marker
from pipelines.models import PromptTemplate
from pipelines.jobs.prompts import MODE2, default_text, render_prompt
from review.sim_responders.classification import detect_mode
from pipelines.llm.simulator.server import serve_in_thread
from review.demo_catalog import DEMO_CATEGORIES
from review.parsing import parse_predicted_category, text_length


@pytest.fixture
def sim():
    handle = serve_in_thread(port=0)
    yield handle
    handle.stop()


def post(sim, body: dict):
    request = urllib.request.Request(f"{sim.base_url}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class _Category:
    def __init__(self, demo):
        self.name, self.effective_definition = demo.name, demo.definition


def vision_request(index: int, prompt: str, seed: int = 0) -> dict:
    image = Image.new("RGB", (160, 96), (200, 200 - seed % 50, 220))
    draw_marker(image, index)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    text = render_prompt(prompt, categories=[_Category(c) for c in DEMO_CATEGORIES])
    return {"model": "qwen-vl-72b-instruct", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}]}]}


def test_models_endpoint(sim):
    with urllib.request.urlopen(f"{sim.base_url}/models", timeout=5) as response:
        ids = [m["id"] for m in json.load(response)["data"]]
    assert "qwen-vl-72b-instruct" in ids


def test_bad_json_is_a_400(sim):
    request = urllib.request.Request(f"{sim.base_url}/chat/completions", data=b"{nope")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    assert error.value.code == 400


def test_vision_answers_read_the_marker_and_follow_the_answer_format(sim):
    names = [c.name for c in DEMO_CATEGORIES]
    right = parsed = 0
    for index in range(len(DEMO_CATEGORIES)):
        for seed in range(4):
            status, _, body = post(sim, vision_request(index, MODE2, seed))
            assert status == 200
            answer = json.loads(body)["choices"][0]["message"]["content"]
            assert answer.startswith("推理：")
            predicted = parse_predicted_category(answer, names)
            parsed += predicted is not None
            right += predicted == DEMO_CATEGORIES[index].name
    total = len(DEMO_CATEGORIES) * 4
    assert parsed >= total * 0.9
    assert total * 0.7 <= right < total, "mostly right, with some realistic mistakes"


def test_mode3_answers_mostly_keep_within_100_characters(sim):
    lengths = []
    for index in range(len(DEMO_CATEGORIES)):
        for seed in range(3):
            _, _, body = post(sim, vision_request(index, default_text(PromptTemplate.Kind.CLASSIFICATION_MODE3), seed))
            answer = json.loads(body)["choices"][0]["message"]["content"]
            lengths.append(text_length(answer.split("\n类别")[0].removeprefix("推理：")))
    within = sum(1 for n in lengths if n <= 100)
    assert within >= len(lengths) * 0.8


def test_detect_mode():
    assert detect_mode(default_text(PromptTemplate.Kind.CLASSIFICATION_MODE3)) == 3 and detect_mode(MODE2) == 2 and detect_mode("可选类别：\n- 换货") == 1


def test_deterministic_and_counted_per_body(sim):
    body = vision_request(3, MODE2)
    first, second = post(sim, body)[2], post(sim, body)[2]
    assert first == second
    assert sim.request_count() == 2
    assert list(sim.answered_counts().values()) == [2]


def test_faults_content_filter_shape_and_429_retry_after(sim):
    sim.set_faults(rate_content_filter=1.0)
    status, _, body = post(sim, {"messages": [{"role": "user", "content": "x"}]})
    assert status == 400 and json.loads(body)["error"]["code"] == "data_inspection_failed"
    sim.set_faults(rate_content_filter=0.0, rate_429=1.0, retry_after=2)
    status, headers, _ = post(sim, {"messages": [{"role": "user", "content": "x"}]})
    assert status == 429 and headers["Retry-After"] == "2" and headers["retry-after-ms"] == "2000"
    sim.set_faults(rate_429=0.0, rate_malformed=1.0)
    status, _, body = post(sim, {"messages": [{"role": "user", "content": "x"}]})
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(TypeError):
        sim.set_faults(rate_nonsense=1)


def test_transient_faults_clear_on_retry_but_refusals_do_not(sim):
    sim.set_faults(rate_500=0.4, rate_content_filter=0.3)
    outcomes = {}
    for i in range(40):
        body = {"messages": [{"role": "user", "content": f"问题{i}"}]}
        codes = [post(sim, body)[0] for _ in range(10)]
        outcomes[i] = codes
    assert any(codes[0] == 400 for codes in outcomes.values())
    for codes in outcomes.values():
        if codes[0] == 400:
            assert set(codes) == {400}
        else:
            assert 200 in codes


@pytest.mark.parametrize("stop_signal", ["SIGTERM", "SIGINT"])
def test_management_command_serves_over_http_and_stops_on_a_signal(stop_signal, tmp_path):
    """`manage.py llm_simulator` answers over HTTP, and TERM (process managers) or INT (Ctrl-C)
    stops it cleanly, exit code 0."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[3]
    stderr_path = tmp_path / "stderr.txt"
    # -X faulthandler: if it ever fails to stop, SIGABRT below makes it print every thread's stack.
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-X", "faulthandler", "manage.py", "llm_simulator",
                                    "--port", str(port), "--latency-ms", "1"],
                                   cwd=root, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1) as response:
                    assert response.status == 200
                    assert "qwen-vl-72b-instruct" in json.load(response)["data"][0]["id"]
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        process.send_signal(getattr(signal, stop_signal))
        try:
            exit_code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            process.wait(timeout=10)
            pytest.fail(f"still running 30 s after {stop_signal}; its stacks:\n{stderr_path.read_text()}")
        assert exit_code == 0, stderr_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
