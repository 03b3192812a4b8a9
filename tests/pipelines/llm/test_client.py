"""The model client against the simulator over real HTTP: errors by kind, retries, limits."""
import asyncio
import time

import pytest

from pipelines.llm.client import LLMClient, image_data_url
from pipelines.llm.errors import LLMError

pytestmark = pytest.mark.django_db

HELLO = [{"role": "user", "content": "你好"}]


def test_chat_returns_text_texts_and_model(llm_simulator):
    result = LLMClient().chat_sync(HELLO, model="qwen-72b-chat", n=3)
    assert result.text and len(result.texts) == 3 and result.model == "qwen-72b-chat"
    assert result.raw["usage"]["total_tokens"] > 0


def test_same_request_same_answer(llm_simulator):
    client = LLMClient()
    assert client.chat_sync(HELLO).text == client.chat_sync(HELLO).text


@pytest.mark.parametrize("fault, kind, retried", [
    ("rate_content_filter", "content_filter", False),
    ("rate_500", "server_error", True),
    ("rate_malformed", "unparseable", True),
])
def test_errors_map_to_stable_kinds(llm_simulator, fault, kind, retried):
    llm_simulator.set_faults(**{fault: 1.0, "retry_after": 0.01})
    client = LLMClient(max_retries=2)
    with pytest.raises(LLMError) as error:
        client.chat_sync(HELLO)
    assert error.value.kind == kind
    assert llm_simulator.request_count() == (3 if retried else 1)
    assert client.stats.errors[kind] == (3 if retried else 1)


def test_hang_times_out_and_is_retried(llm_simulator):
    llm_simulator.set_faults(rate_hang=1.0, hang_seconds=5)
    started = time.monotonic()
    with pytest.raises(LLMError) as error:
        LLMClient(timeout=0.3, max_retries=1).chat_sync(HELLO)
    assert error.value.kind == "timeout"
    assert time.monotonic() - started < 3
    assert llm_simulator.outcome_counts()["hang"] == 2


def test_retry_after_is_honoured(llm_simulator, settings):
    settings.LLM_RATE_LIMIT_MAX_WAIT = 0.7  # 429s are retried for this long (tests/pipelines/llm/test_providers.py)
    llm_simulator.set_faults(rate_429=1.0, retry_after=0.4)
    started = time.monotonic()
    with pytest.raises(LLMError) as error:
        LLMClient(max_retries=2).chat_sync(HELLO)
    assert error.value.kind == "rate_limited"
    assert time.monotonic() - started >= 0.8  # two waits of 0.4 s, not the 0.02 s test backoff


def test_connection_refused_is_a_connection_error(settings):
    client = LLMClient(base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=1)
    with pytest.raises(LLMError) as error:
        client.chat_sync(HELLO)
    assert error.value.kind == "connection"


def test_concurrency_is_bounded(llm_simulator):
    llm_simulator.set_faults(latency_ms=100)
    client = LLMClient(concurrency=3)

    async def many():
        try:
            await asyncio.gather(*(client.chat([{"role": "user", "content": f"问题{i}"}]) for i in range(12)))
        finally:
            await client.aclose()

    asyncio.run(many())
    assert llm_simulator.max_in_flight == 3


def test_requests_per_minute_spaces_requests(llm_simulator):
    client = LLMClient(requests_per_minute=600, concurrency=10)  # one request every 0.1 s

    async def many():
        try:
            await asyncio.gather(*(client.chat([{"role": "user", "content": f"问题{i}"}]) for i in range(6)))
        finally:
            await client.aclose()

    started = time.monotonic()
    asyncio.run(many())
    assert time.monotonic() - started >= 0.5


def test_the_api_key_is_not_in_the_repr_or_errors(llm_simulator):
    client = LLMClient(api_key="sk-very-secret")
    llm_simulator.set_faults(rate_content_filter=1.0)
    with pytest.raises(LLMError) as error:
        client.chat_sync(HELLO)
    assert "sk-very-secret" not in repr(client) + str(error.value) + repr(vars(error.value))


def test_image_data_url(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG fake")
    assert image_data_url(path).startswith("data:image/png;base64,")
