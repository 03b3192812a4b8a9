"""Serve the OpenAI-compatible LLM simulator: `python manage.py llm_simulator --port 8765`."""
from django.core.management.base import BaseCommand

from pipelines.llm.simulator.server import serve_forever


class Command(BaseCommand):
    help = "Run the OpenAI-compatible LLM simulator (/v1/chat/completions, /v1/models) with fault injection."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
        parser.add_argument("--rate-429", type=float, default=0.0, help="share of requests answered 429")
        parser.add_argument("--rate-500", type=float, default=0.0, help="share answered 500")
        parser.add_argument("--rate-hang", type=float, default=0.0, help="share that hang past the timeout")
        parser.add_argument("--rate-content-filter", type=float, default=0.0,
                            help="share of inputs refused like DashScope's data_inspection_failed")
        parser.add_argument("--rate-malformed", type=float, default=0.0, help="share answered with broken JSON")
        parser.add_argument("--retry-after", type=float, default=1.0, help="seconds advertised with a 429")
        parser.add_argument("--hang-seconds", type=float, default=120.0)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--rate-limit", type=int, default=0, help="answered requests allowed per --rate-window")
        parser.add_argument("--rate-window", type=float, default=60.0, help="seconds (default: a minute)")
        parser.add_argument("--rate-window-fixed", action="store_true",
                            help="count per fixed window (as LiteLLM's per-minute counters) instead of sliding")
        parser.add_argument("--retry-headers", choices=["plain", "litellm", "none"], default="plain",
                            help="429 headers: Retry-After, LiteLLM's relayed llm_provider-retry-after, or none")
        parser.add_argument("--advertise-limit", action="store_true", help="send x-ratelimit-*-requests headers")
        parser.add_argument("--reasoning-models", default="", help="model-name prefixes answering like thinking models")
        parser.add_argument("--ignore-n", action="store_true", help="answer one choice whatever n asks")
        parser.add_argument("--content-filter-style", default="dashscope",
                            choices=["dashscope", "openai", "openai_prompt", "azure", "litellm"])

    def handle(self, *args, **opts):
        faults = {name: opts[name] for name in (
            "latency_ms", "rate_429", "rate_500", "rate_hang", "rate_content_filter", "rate_malformed",
            "retry_after", "hang_seconds", "seed", "rate_limit", "rate_window", "rate_window_fixed", "retry_headers",
            "advertise_limit", "reasoning_models", "ignore_n", "content_filter_style")}
        self.stdout.write(f"LLM simulator on http://{opts['host']}:{opts['port']}/v1  faults={faults}")
        serve_forever(opts["host"], opts["port"], **faults)
