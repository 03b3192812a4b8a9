"""Model endpoints given per job (the DPO strategy's base URL) are used only when they are in the
configured allow-list (LLM_ENDPOINT_ALLOWLIST; by default OPENAI_BASE_URL and the bundled
simulator): the preview runs in the web process, so a typed URL must never reach link-local
metadata services or the machine's own database and Redis ports."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from pipelines.dpo.model import llm_for
from pipelines.dpo.params import clean_params
from pipelines.llm.endpoints import endpoint_allowed
from pipelines.jobs.services import job_create
from pipelines.models import Job, JobKind
from pipelines.llm.simulator.server import serve_in_thread
from core.errors import ApplicationError

pytestmark = pytest.mark.django_db


@pytest.fixture
def bait_server():
    """A local OpenAI-lookalike that records every request it gets."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(500)
            self.end_headers()

        do_GET = do_POST  # noqa: N815

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", hits
    server.shutdown()


def strategy(base_url: str) -> dict:
    return {"source": {"name": "feedback"},
            "strategy": {"name": "model", "base_url": base_url, "model": "sft-small", "template": "{prompt}"}}


REFUSED = [
    "http://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
    "http://127.0.0.1:5432/v1",  # this machine's PostgreSQL
    "http://127.0.0.1:6379/v1",  # this machine's Redis
    "http://localhost:6379",
    "http://[::ffff:127.0.0.1]:6379/v1",
    "http://127.0.0.1:8765@169.254.169.254/v1",  # the simulator's address as user info
    "http://127.0.0.1:8765.evil.example/v1",
    "https://127.0.0.1:8765/v1",  # another scheme is another endpoint
    "http://127.0.0.1:8765/v1/../../admin",
]


@pytest.mark.parametrize("url", REFUSED)
def test_endpoints_outside_the_allow_list_are_refused(url, settings):
    settings.OPENAI_BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"
    settings.LLM_ENDPOINT_ALLOWLIST = []
    assert not endpoint_allowed(url)
    with pytest.raises(ApplicationError, match="不在允许的模型地址"):
        clean_params(strategy(url))


def test_by_default_the_configured_provider_and_the_simulator_are_allowed(settings):
    settings.OPENAI_BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"
    settings.LLM_ENDPOINT_ALLOWLIST = []
    for url in ("https://dashscope.aliyuncs.com/compatible-mode/v1", "https://DashScope.aliyuncs.com:443/compatible-mode/v1/",
                "http://127.0.0.1:8765/v1", "http://127.0.0.1:8765/v1/"):
        assert endpoint_allowed(url), url
        assert clean_params(strategy(url))["strategy"]["base_url"] == url.rstrip("/")


def test_a_configured_allow_list_replaces_the_default(settings):
    settings.OPENAI_BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"
    settings.LLM_ENDPOINT_ALLOWLIST = ["http://10.0.0.5:8000/v1", "http://gpu2.internal:8001"]
    assert endpoint_allowed("http://10.0.0.5:8000/v1")
    assert endpoint_allowed("http://gpu2.internal:8001/v1")  # a listed server: any path on it
    assert not endpoint_allowed("http://10.0.0.5:8000/other")
    assert not endpoint_allowed("http://127.0.0.1:8765/v1")
    assert not endpoint_allowed("https://dashscope.aliyuncs.com/compatible-mode/v1")


def test_the_preview_in_the_web_process_never_contacts_an_endpoint_off_the_list(
    staff_client, feedback_prompts, llm_simulator, bait_server  # noqa: F811
):
    base_url, hits = bait_server
    form = {"source": "feedback", "strategy": "model", "base_url": base_url, "model": "sft-small",
            "template": "{prompt}", "mode": "greedy", "preview_n": "2"}
    response = staff_client.post(reverse("dpo:new"), form)
    assert response.status_code == 400
    assert "不在允许的模型地址" in response.content.decode()
    assert hits == []
    assert staff_client.post(reverse("dpo:start"), form).status_code in (302, 400)
    assert not Job.objects.filter(kind=JobKind.DPO).exists()
    assert hits == []


def test_a_second_server_on_the_allow_list_is_used(staff_client, feedback_prompts, llm_simulator, settings):  # noqa: F811
    sft_server = serve_in_thread(port=0)
    try:
        settings.LLM_ENDPOINT_ALLOWLIST = [settings.OPENAI_BASE_URL, sft_server.base_url]
        form = {"source": "feedback", "strategy": "model", "base_url": sft_server.base_url, "model": "sft-small",
                "template": "{prompt}", "mode": "greedy", "preview_n": "2"}
        response = staff_client.post(reverse("dpo:new"), form)
        assert response.status_code == 200, response.content.decode()[:2000]
        assert sft_server.request_count() >= 2 and llm_simulator.request_count() == 0
    finally:
        sft_server.stop()


def test_a_job_created_with_an_endpoint_off_the_list_is_refused(settings):
    settings.LLM_ENDPOINT_ALLOWLIST = []
    with pytest.raises(ApplicationError, match="不在允许的模型地址"):
        job_create(kind=JobKind.DPO, params=strategy("http://169.254.169.254/v1"))
    assert not Job.objects.exists()


def test_a_stored_job_whose_endpoint_left_the_list_makes_no_call(settings):
    """The list is checked again where the client is made (a job created before the list changed)."""
    settings.LLM_ENDPOINT_ALLOWLIST = ["http://10.0.0.5:8000/v1"]
    with pytest.raises(ApplicationError, match="不在允许的模型地址"):
        llm_for({"base_url": "http://127.0.0.1:6379/v1", "model": "m"})
