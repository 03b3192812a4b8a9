"""Training-data formats: writers, readers written from each format's spec, validation and the
matching LLaMA-Factory `dataset_info.json` entries (as documented in LLaMA-Factory's data/README.md and TRL's dataset_formats.md).

The record contract
-------------------
Every producer in datafix (classification, generation, logs, feedback, DPO) hands the builder and the
writers *records*: plain dicts with these keys

    id        str   stable id of the record within its source (reports, dedup, split grouping)
    source    str   which source it came from ("logs", "feedback", "classification", …)
    prompt    str   the user turn (the instruction). Multimodal prompts carry one "<image>" per image.
    input     str   optional; alpaca's "input". Other formats join it to the prompt with "\\n"
                    (as LLaMA-Factory does when it converts alpaca).
    response  str   SFT: the assistant answer (reasoning inside it: "<think>…</think>answer")
    system    str   optional system prompt
    history   list  optional earlier turns, [[q1, a1], [q2, a2]]
    images    list  optional image paths (as the trainer will see them)
    chosen    str   preference: the better answer
    rejected  str   preference: the worse answer (one pair per record)
    meta      dict  optional, for reports and filters; never written to a training file

SFT records have `response`; preference records have `chosen` and `rejected`.

Using it
--------
    rows = [to_row("sharegpt", r) for r in records]          # one record -> one training row
    write_records(path, "alpaca", records)                   # .json array or .jsonl by suffix
    validate_row("alpaca_preference", row)                   # -> list of error strings ([] = ok)
    dataset_info_entry("sharegpt", "data.json", columns={"system", "images"})
    read_records(path, "sharegpt")                           # reader from the spec -> records

Writers stream (a JSON array is written row by row), write UTF-8 with `ensure_ascii=False` so CJK
stays readable, and write the same optional columns on every row (`columns`), because
`datasets`/LLaMA-Factory raise KeyError when a configured column is missing from the file.

The package: `spec` (the registry and record helpers), `writers` (record -> row), `validation`,
`readers` (row -> record), `rowfiles` (streamed .json/.jsonl files), `dataset_info`, and `plain` (the
row JSON of a text-only record from a per-format template, which the builder uses for speed). Its
public names are importable from `pipelines.datasets.formats` itself, as below.
"""
from .dataset_info import DatasetInfoConflict, check_dataset_info, dataset_info_entry, write_dataset_info
from .readers import from_row
from .rowfiles import RowWriter, container_for, encoded_row, iter_rows, read_records, write_records, write_rows
from .spec import (
    FORMATS, IMAGE_TOKEN, OPTIONAL_COLUMNS, SFT_FORMATS, Format, FormatError, columns_of,
    full_prompt, get_format, image_token_count, with_image_tokens,
)
from .validation import LLAMAFACTORY_FORMATS, validate_row
from .writers import to_row

__all__ = [
    "DatasetInfoConflict", "FORMATS", "Format", "FormatError", "IMAGE_TOKEN", "LLAMAFACTORY_FORMATS",
    "OPTIONAL_COLUMNS", "RowWriter", "SFT_FORMATS", "check_dataset_info", "columns_of",
    "container_for", "dataset_info_entry", "encoded_row", "from_row", "full_prompt", "get_format", "image_token_count",
    "iter_rows", "read_records", "to_row", "validate_row", "with_image_tokens",
    "write_dataset_info", "write_records", "write_rows",
]
