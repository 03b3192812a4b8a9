"""`make compat`: every job kind through LiteLLM's proxy, a real OpenAI-compatible server.

    python compat/check_providers.py WORKDIR

Starts `litellm --config` (var/compat-litellm, compat/requirements-litellm.txt) on a free local port
with mocked deployments (`mock_response`, no model anywhere):

- `vl-30rpm`: a classification answer, limited to 30 requests per minute (`rpm: 30`; LiteLLM's router
  answers the 31st with 429 and only `llm_provider-retry-after: 60`);
- `gen-vl` + `judge` (30/min each): a <look>/<think>/<answer> response and a JSON verdict;
- `thinker`: a thinking model's answer, `reasoning_content` beside a bare "类别：…" content;
- `sft-mock`: a fixed completion object, so the proxy ignores `n` as DashScope models do;
- `filtered`: Azure's content-filter refusal as LiteLLM relays it.

Then runs compat/providers_jobs.py in the project's own virtualenv against it (a throwaway SQLite
database in WORKDIR, no rate setting) and prints per scenario: items done/failed, requests sent,
effective rate vs the limit. Exits non-zero when a scenario does not behave.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LITELLM = ROOT / "var" / "compat-litellm" / "bin" / "litellm"
PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"
MASTER_KEY = "sk-compat-master"
LIMIT_PER_MINUTE = 30

CLASSIFICATION_ANSWER = "推理：页面上有“申请换货”按钮和换货原因选项，用户正在办理换货。\n类别：换货"
RESPONSE_ANSWER = ("<look>图片中央是一座多层木塔，塔身有多层屋檐。</look><think>多层屋檐、木结构、塔形，"
                   "与标题所述的木塔一致，因此可以判断。</think><answer>这是一座木塔。</answer>")
VERDICT = json.dumps({"overall_score": 8, "pass": True, "issues": [], "scores": {
    "visual_grounding": 8, "reasoning_depth": 8, "answer_correctness": 8, "language_quality": 8,
    "format_compliance": 9}})


def completion(content: str, reasoning: str | None = None) -> dict:
    message = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning_content"] = reasoning
    return {"id": "chatcmpl-compat", "object": "chat.completion", "created": 1700000000, "model": "mock",
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}


def config() -> dict:
    def deployment(name, mock, **extra):
        return {"model_name": name, "litellm_params": {"model": f"openai/{name}", "api_key": "sk-unused",
                                                       "mock_response": mock, **extra}}

    return {
        "model_list": [
            deployment("vl-30rpm", CLASSIFICATION_ANSWER, rpm=LIMIT_PER_MINUTE),
            deployment("gen-vl", RESPONSE_ANSWER, rpm=LIMIT_PER_MINUTE),
            deployment("judge", VERDICT, rpm=LIMIT_PER_MINUTE),
            deployment("thinker", completion("类别：换货", "用户点击了“申请换货”，页面列出换货原因，属于换货场景。")),
            deployment("sft-mock", completion("水果有很多种，比如苹果。")),
            {"model_name": "filtered", "litellm_params": {
                "model": "azure/filtered", "api_key": "sk-unused", "api_base": "http://127.0.0.1:9",
                "api_version": "2024-02-01", "mock_response": "Exception: content_filter_policy"}},
        ],
        # No retries inside the proxy: a limited request is answered 429 at once (with the router's
        # default retries LiteLLM holds it up to a minute instead, past most clients' timeouts).
        "router_settings": {"routing_strategy": "usage-based-routing-v2", "num_retries": 0},
        "general_settings": {"master_key": MASTER_KEY},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"litellm exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"litellm not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def main(workdir: str) -> int:
    if not LITELLM.exists():
        print(f"{LITELLM} is missing: `make compat` installs compat/requirements-litellm.txt there")
        return 1
    work = Path(workdir) / "providers"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "litellm.json").write_text(json.dumps(config(), ensure_ascii=False, indent=2), encoding="utf-8")
    port = free_port()
    log = work / "litellm.log"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    with open(log, "wb") as out:
        proxy = subprocess.Popen([str(LITELLM), "--config", str(work / "litellm.json"), "--host", "127.0.0.1",
                                  "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/liveliness", proxy, log)
        job_env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("LLM_", "DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV"))}
        job_env.update({"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": MASTER_KEY,
                        "DATAFIX_VAR_DIR": str(work / "var"), "DJANGO_SETTINGS_MODULE": "config.settings.local",
                        "LOG_LEVEL": "WARNING", "COMPAT_LIMIT_PER_MINUTE": str(LIMIT_PER_MINUTE)})
        return subprocess.run([str(PROJECT_PYTHON), str(ROOT / "compat" / "providers_jobs.py")], cwd=ROOT,
                              env=job_env).returncode
    finally:
        proxy.terminate()
        try:
            proxy.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "var" / "compat" / "work")))
