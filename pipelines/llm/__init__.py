"""The model client: the only place in datafix that talks to a model.

`client` (LLMClient: concurrency, timeouts, retries, streaming), `errors` (LLMError and its stable
kinds, what a failure was and whether to retry), `rate` (the adaptive request rate), `responses`
(ChatResult, reading a completion body) and `endpoints` (the allow-list of model URLs a job may name).
"""
