"""The model client against behaviours of real servers (vLLM, DashScope, OpenAI, Azure, a LiteLLM proxy),
each reproduced by a fault mode of the simulator: relayed retry headers, a request limit, thinking
models, truncated answers, an ignored `n`, refused parameters, every provider's content filter,
configuration errors and stream-only models."""
import asyncio
import time

import pytest

from pipelines.llm.client import LLMClient
from pipelines.llm.errors import LLMError, retry_after_seconds
from pipelines.llm.rate import AdaptiveRate

pytestmark = pytest.mark.django_db

HELLO = [{"role": "user", "content": "你好"}]


def ask_many(client: LLMClient, count: int, **kwargs) -> list:
    """`count` different questions at once; each outcome is a ChatResult or the LLMError raised."""

    async def run():
        try:
            return await asyncio.gather(
                *(client.chat([{"role": "user", "content": f"问题{i}"}], **kwargs) for i in range(count)),
                return_exceptions=True)
        finally:
            await client.aclose()

    return asyncio.run(run())


# --------------------------------------------------------------------------- rate limits
@pytest.mark.parametrize("headers, seconds", [
    ({"retry-after": "7"}, 7.0),
    ({"retry-after-ms": "1500", "retry-after": "2"}, 1.5),
    ({"llm_provider-retry-after": "60"}, 60.0),          # LiteLLM relays the provider's headers prefixed
    ({"llm_provider-retry-after-ms": "250"}, 0.25),
    ({"x-ratelimit-reset-requests": "6m0s"}, 360.0),     # OpenAI's reset duration
    ({"x-ratelimit-reset-requests": "20ms"}, 0.02),
    ({"llm_provider-x-ratelimit-reset-requests": "1s"}, 1.0),
    ({}, None),
])
def test_retry_after_is_read_from_every_header_servers_send(headers, seconds):
    assert retry_after_seconds(headers) == pytest.approx(seconds) if seconds is not None else \
        retry_after_seconds(headers) is None


def test_retry_after_as_an_http_date():
    from email.utils import formatdate

    assert 8 <= retry_after_seconds({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10


def test_a_limit_behind_a_litellm_proxy_fails_no_call(llm_simulator):
    # LiteLLM answers a deployment's limit with only `llm_provider-retry-after: <window>`; the calls
    # must wait for the window to pass, however few retries LLM_MAX_RETRIES allows.
    llm_simulator.set_faults(rate_limit=4, rate_window=1.0, retry_headers="litellm")
    client = LLMClient(concurrency=4, max_retries=2, rate_window=1.0)
    outcomes = ask_many(client, 12)
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    assert llm_simulator.outcome_counts().get("429_limit", 0) > 0


def test_a_429_is_retried_until_the_wait_bound_not_by_count(llm_simulator, settings):
    settings.LLM_RATE_LIMIT_MAX_WAIT = 1.0
    llm_simulator.set_faults(rate_429=1.0, retry_after=0.05)
    started = time.monotonic()
    with pytest.raises(LLMError) as error:
        LLMClient(max_retries=1).chat_sync(HELLO)
    assert error.value.kind == "rate_limited"
    assert time.monotonic() - started >= 1.0
    assert llm_simulator.request_count() > 2  # more attempts than max_retries allows


def test_adaptive_rate_finds_the_servers_limit_and_fails_nothing(llm_simulator):
    # 10 answers per (scaled-down) window, i.e. 600/min; no rate is configured.
    llm_simulator.set_faults(rate_limit=10, rate_window=1.0, latency_ms=20)
    client = LLMClient(concurrency=8, requests_per_minute=0, rate_window=1.0)
    outcomes = ask_many(client, 40)
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    snapshot = client.rate.snapshot()
    assert snapshot["limited"] > 0 and snapshot["decreases"] >= 1
    assert 300 <= snapshot["current_per_minute"] <= 900  # settled near the server's 600/min


def test_adaptive_rate_aimd_rules(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    rate = AdaptiveRate(None, window=60.0)
    assert rate.rate is None  # no ceiling, nothing learned: starts are not spaced
    for _ in range(30):  # a burst: 30 answers in 3 s, then the server says no
        rate.succeeded()
        clock[0] += 0.1
    rate.limited_by_server(LLMError("rate_limited", retry_after=60))
    assert rate.rate == pytest.approx(0.95 * 30)  # below what the server answered, not below nothing
    for _ in range(20):  # a storm of 429s during the same window lowers it once
        clock[0] += 1
        rate.limited_by_server(LLMError("rate_limited", retry_after=60))
    assert rate.decreases == 1
    before = rate.rate
    for _ in range(30):
        clock[0] += 2
        rate.succeeded()
    assert before < rate.rate < before * 1.2  # additive increase while answers succeed
    limited = AdaptiveRate(None)
    limited.limited_by_server(LLMError("rate_limited", limit_hint=30))
    assert limited.ceiling == 30  # an advertised limit caps the rate


# --------------------------------------------------------------------------- thinking models, truncation
@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_of_thinking_models_is_kept(llm_simulator, field):
    llm_simulator.set_faults(reasoning_models="qwen3-thinking", reasoning_field=field)
    result = LLMClient().chat_sync([{"role": "user", "content": "解释一下这个问题\n然后回答"}], model="qwen3-thinking")
    assert result.reasoning and result.text and result.reasoning not in result.text
    assert result.finish_reason == "stop"


def test_a_truncated_answer_is_an_error_unless_allowed(llm_simulator):
    llm_simulator.set_faults(rate_truncated=1.0)
    with pytest.raises(LLMError) as error:
        LLMClient().chat_sync(HELLO)
    assert error.value.kind == "truncated"
    assert llm_simulator.request_count() == 1  # the same max_tokens would cut it again
    result = LLMClient().chat_sync(HELLO, allow_truncated=True)
    assert result.finish_reason == "length"


def test_a_thinking_model_out_of_tokens_gives_no_content(llm_simulator):
    llm_simulator.set_faults(reasoning_models="qwen3-thinking", rate_truncated=1.0)
    with pytest.raises(LLMError) as error:
        LLMClient().chat_sync([{"role": "user", "content": "想一想\n再答"}], model="qwen3-thinking")
    assert error.value.kind == "truncated"


# --------------------------------------------------------------------------- n
def test_n_ignored_by_the_server_falls_back_to_separate_requests(llm_simulator):
    llm_simulator.set_faults(ignore_n=True)
    client = LLMClient()
    result = ask_many(client, 1, n=3)[0]
    assert len(result.texts) == 3 and result.n_fallback
    assert client.stats.n_fallbacks == 1
    llm_simulator.reset_counts()
    again = ask_many(client, 1, n=3)[0]  # known now: three single requests straight away
    assert len(again.texts) == 3 and llm_simulator.request_count() == 3


def test_n_honoured_by_the_server_is_one_request(llm_simulator):
    client = LLMClient()
    result = ask_many(client, 1, n=3)[0]
    assert len(result.texts) == 3 and not result.n_fallback and llm_simulator.request_count() == 1


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("style", ["dashscope", "openai", "openai_prompt", "azure", "litellm"])
def test_every_providers_content_filter_is_content_filter(llm_simulator, style):
    llm_simulator.set_faults(rate_content_filter=1.0, content_filter_style=style)
    with pytest.raises(LLMError) as error:
        LLMClient(max_retries=2).chat_sync(HELLO)
    assert error.value.kind == "content_filter"
    assert llm_simulator.request_count() == 1


@pytest.mark.parametrize("faults, model", [
    ({"api_key": "sk-the-right-one"}, None),                       # 401 wrong key
    ({"known_models": "qwen-72b-chat"}, "qwen-72b-chta"),           # 404 model not found
    ({"refuse_param": "temperature", "refuse_param_models": "o3"}, "o3-mini"),  # 400 o-series temperature
])
def test_configuration_errors_are_config_errors_and_not_retried(llm_simulator, faults, model):
    llm_simulator.set_faults(**faults)
    with pytest.raises(LLMError) as error:
        LLMClient(max_retries=3).chat_sync(HELLO, model=model, temperature=0)
    assert error.value.kind == "config_error"
    assert llm_simulator.request_count() == 1


def test_unset_parameters_are_not_sent(llm_simulator):
    llm_simulator.set_faults(refuse_param="temperature", refuse_param_models="o3")
    assert LLMClient().chat_sync(HELLO, model="o3-mini", temperature=None).text


# --------------------------------------------------------------------------- streaming
def test_stream_only_models_are_streamed_with_content_and_reasoning(llm_simulator, settings):
    llm_simulator.set_faults(stream_only_models="qvq-", reasoning_models="qvq-")
    messages = [{"role": "user", "content": "观察图片\n给出结论"}]
    with pytest.raises(LLMError) as error:
        LLMClient(stream=False).chat_sync(messages, model="qvq-max")
    assert error.value.kind == "config_error"
    settings.LLM_STREAM_MODELS = ["qvq-*"]
    streamed = LLMClient().chat_sync(messages, model="qvq-max")
    plain = LLMClient(stream=False).chat_sync(messages, model="qwen-72b-chat")
    assert streamed.text and streamed.reasoning and streamed.finish_reason == "stop"
    assert streamed.raw["usage"]["total_tokens"] > 0
    assert (streamed.text, streamed.reasoning) != ("", None)
    assert plain.text
