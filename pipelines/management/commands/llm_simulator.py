"""Serve the OpenAI-compatible LLM simulator: `python manage.py llm_simulator --port 8765`."""
from django.core.management.base import BaseCommand

from pipelines.simulator import serve_forever


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

    def handle(self, *args, **opts):
        faults = {name: opts[name] for name in (
            "latency_ms", "rate_429", "rate_500", "rate_hang", "rate_content_filter", "rate_malformed",
            "retry_after", "hang_seconds", "seed")}
        self.stdout.write(f"LLM simulator on http://{opts['host']}:{opts['port']}/v1  faults={faults}")
        serve_forever(opts["host"], opts["port"], **faults)
