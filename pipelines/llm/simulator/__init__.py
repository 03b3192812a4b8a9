"""An OpenAI-compatible model server for demos and tests (`manage.py llm_simulator`): dev tooling,
kept apart from the product code (the command, the tests, bench/ and compat/ run it).

`server` (the HTTP handler, the server, running it in a thread or the foreground), `state` (request
counters and the request limit), `faults` (what goes wrong and when), `completions` (the answer body,
thinking models, streaming), `logprobs` (per-token log-probs), `seeds` (determinism), `messages`
(reading a request, for responders) and `responders/` (the answers to the engine's own kinds).
"""
