"""DPO: build preference pairs (prompt, chosen, rejected) and check every one (job kind "dpo").

Seed 002: the team asked a weak SFT model for worse answers and got the same off-topic text for every
prompt, because the model (or the way the prompt was sent) was wrong — and found out only by printing
three samples by hand. Here that is the workflow:

1. Inputs: prompts with chosen answers from any dataset in the product (`sources`, a registry named
   in settings.DPO_PROMPT_SOURCES) or a JSONL file.
2. A reject strategy per job (`params.STRATEGIES`): a model (any OpenAI-compatible endpoint; greedy,
   sampling with temperature/top-p, or n candidates → n rows), or a model-free degradation of the
   chosen answer (truncate, drop list items, drop the `<think>` reasoning, a near-miss answer from a
   similar prompt). The model is sent the prompt through an explicit template (`{prompt}[EOS]` if
   that is how it was trained), stored with the job and shown on every page.
3. `pairs.preview(params, n)` runs the same code on the first n prompts without writing anything — what
   the full job will produce for them — with endpoint, model and the exact request.
4. Every pair is checked (`pipelines.dpo.checks`); the job report ranks the issues and says plainly
   when most rejects are off-topic, with the seed's likely causes.

Modules: `params` (choices, defaults, `clean_params`), `sources` (where prompts come from), `rejects`
(model-free degradations), `model` (rejects from a model), `pairs` (one prompt → checked pairs, the
preview), `jobkind` (the job kind), `services` (writes: store, review, export), `selectors` (reads),
`forms`, `views`, `urls`; `checks/` holds the pair checks.
"""
