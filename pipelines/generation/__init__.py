"""Generation + judge: visual question/answer training examples, validated by a second model call.

For each source item (an image with its wiki title and optional facts) the job asks the vision
model for a question — open or multiple choice, by a configurable ratio — and for a response in the
form `<look>…</look><think>…</think><answer>…</answer>`. The response's structure is checked before
the judge sees it (a missing tag is a failure reason of its own and costs no judge call); the judge
scores it (`judge`). Every example becomes a `GeneratedExample` row, passed or failed,
and a run can write the team's files (`generated_examples.jsonl`, `failed_examples.jsonl`,
`pipeline_report.json`, `checkpoint.json`) in the record format of their original pipeline.

Modules: `structure` (the response's tags), `prompts` (question type and the prompts), `sources`
(reading source files), `params` (defaults and `clean_params`), `jobkind` (the job kind),
`judge` (the verdict), `run_files` (the team's files), `analysis` (the failure analysis),
`services` (writes: import, overrule, re-run, export), `selectors` (reads), `forms`, `views`, `urls`.
"""
