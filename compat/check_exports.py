"""`make compat`: load every export through the trainers' own code (runs in the compat virtualenv).

    var/compat-venv/bin/python compat/check_exports.py WORKDIR

Reads WORKDIR/manifest.json (written by compat/make_exports.py) and, for each export file and each
consumer docs/formats.md claims for it:

  llamafactory  LLaMA-Factory's `get_dataset` (its dataset_info.json parser, converters and
                preprocessing) with `dataset_dir` = the export folder and `media_dir` = MEDIA_ROOT;
                text rows under the `default` template, image rows under `llava` (its image plugin
                opens every image); preference files as its DPO workflow loads them (pairwise)
  trl_sft       TRL `SFTTrainer` dataset preparation and one training step (tiny Llama; image rows:
                a tiny LLaVA and its processor, images decoded with `datasets.Image`)
  trl_dpo       TRL `DPOTrainer` the same way
  seed_reader   the team's DPO trainer's reading: `pandas.read_json`, columns prompt/chosen/reject

No hub downloads exist here: the tokenizer is trained on the exports' own text and the models are
built from configs. Prints the table export | consumer | rows in | rows out | images resolved, and
exits 1 if any consumer failed, lost a row or missed an image.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

for name, value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "DISABLE_VERSION_CHECK": "1", "WANDB_DISABLED": "true", "TOKENIZERS_PARALLELISM": "false",
                    "TRANSFORMERS_VERBOSITY": "error", "DATASETS_VERBOSITY": "error", "LLAMAFACTORY_VERBOSITY": "WARN",
                    "CUDA_VISIBLE_DEVICES": ""}.items():
    os.environ.setdefault(name, value)

try:
    import torchaudio  # noqa: F401
except ImportError:  # see compat/shims/torchaudio: LLaMA-Factory imports it for audio only
    sys.path.append(str(Path(__file__).resolve().parent / "shims"))

import datasets  # noqa: E402
import torch  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()
datasets.disable_progress_bars()
torch.manual_seed(0)

IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", IMAGE_TOKEN, "<pad>"]
# ChatML; content may be a string or TRL's parts ({"type": "text"} / {"type": "image"}).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IMAGE_SIZE, PATCH = 28, 14


# --------------------------------------------------------------------------- tiny models, built here

def _texts(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


def build_models(manifest: dict, root: Path) -> dict:
    """A BPE tokenizer trained on the exports' text, a tiny Llama and a tiny LLaVA with its processor."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlamaForCausalLM, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)

    def corpus():
        for item in manifest["exports"]:
            with open(Path(item["folder"]) / item["file"], encoding="utf-8") as fh:
                head = fh.read(1)
                fh.seek(0)
                rows = json.load(fh) if head == "[" else [json.loads(line) for line in fh if line.strip()]
            for row in rows:
                yield " ".join(t for t in _texts(row) if not t.endswith((".png", ".jpg")))

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(
        vocab_size=3000, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<pad>",
                                        bos_token=None, unk_token=None)
    tokenizer.chat_template = CHAT_TEMPLATE
    text_config = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=8192,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
                       tie_word_embeddings=False)
    lm_dir, vlm_dir = root / "tiny-llama", root / "tiny-llava"
    LlamaForCausalLM(LlamaConfig(**text_config)).save_pretrained(lm_dir)
    tokenizer.save_pretrained(lm_dir)

    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=IMAGE_SIZE, patch_size=PATCH, projection_dim=32)
    vlm_config = LlavaConfig(vision_config=vision.to_dict(), text_config=LlamaConfig(**text_config).to_dict(),
                             image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                             vision_feature_select_strategy="default", vision_feature_layer=-1,
                             image_seq_length=(IMAGE_SIZE // PATCH) ** 2)
    LlavaForConditionalGeneration(vlm_config).save_pretrained(vlm_dir)
    image_processor = CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                         crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH,
                               vision_feature_select_strategy="default", image_token=IMAGE_TOKEN,
                               num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(vlm_dir)
    tokenizer.save_pretrained(vlm_dir)
    return {"lm": lm_dir, "vlm": vlm_dir}


# --------------------------------------------------------------------------- consumers

def _rows_in(item: dict) -> int:
    return item["rows"]


def check_llamafactory(item: dict, media_root: str, models: dict, scratch: Path) -> tuple[int, int]:
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    entry = item["dataset_info"]
    if not entry:
        raise AssertionError("no dataset_info.json entry")
    vision = bool(item["images"])
    stage = "dpo" if entry.get("ranking") else "sft"
    model_args, data_args, training_args, _, _ = get_train_args({
        "model_name_or_path": str(models["vlm" if vision else "lm"]), "stage": stage, "do_train": True,
        "finetuning_type": "full", "dataset": item["dataset_info_name"], "dataset_dir": item["folder"],
        "media_dir": media_root, "template": "llava" if vision else "default", "cutoff_len": 8192,
        "output_dir": str(scratch / "lf-out"), "overwrite_cache": True, "report_to": "none",
        "per_device_train_batch_size": 1, "use_cpu": True,
    })
    tokenizer_module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
    # LLaMA-Factory's DPO workflow reads preference data as its "rm" (pairwise) stage does.
    module = get_dataset(template, model_args, data_args, training_args, "rm" if stage == "dpo" else stage,
                         **tokenizer_module)
    dataset = module["train_dataset"]
    resolved = 0
    if "images" in dataset.column_names:
        for images in dataset["images"]:
            resolved += sum(1 for p in images or [] if isinstance(p, str) and os.path.isfile(p))
    return len(dataset), resolved


def _load_rows(item: dict, media_root: str):
    """The export read as `datasets` reads JSON; image paths made absolute and decoded as images."""
    dataset = datasets.load_dataset("json", data_files=str(Path(item["folder"]) / item["file"]), split="train")
    if "images" in dataset.column_names and item["images"]:
        dataset = dataset.map(lambda row: {"images": [os.path.join(media_root, p) for p in row["images"] or []]})
        dataset = dataset.cast_column("images", datasets.Sequence(datasets.Image()))
    return dataset


def _decoded_images(dataset) -> int:
    if "images" not in dataset.column_names:
        return 0
    from PIL import Image

    return sum(1 for row in dataset for im in row["images"] or [] if isinstance(im, Image.Image) and im.size[0] > 0)


def _trl_args(config_class, scratch: Path, **extra):
    return config_class(output_dir=str(scratch / "trl-out"), max_steps=1, per_device_train_batch_size=2,
                        report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, dataset_num_proc=None,
                        bf16=False, fp16=False, **extra)


def _vision_parts(models: dict):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    processor = AutoProcessor.from_pretrained(models["vlm"], use_fast=False)
    model = LlavaForConditionalGeneration.from_pretrained(models["vlm"])
    return model, processor


def check_trl_sft(item: dict, media_root: str, models: dict, scratch: Path) -> tuple[int, int]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    dataset = _load_rows(item, media_root)
    images = _decoded_images(dataset)
    if item["images"]:
        model, processing_class = _vision_parts(models)
        args = _trl_args(SFTConfig, scratch, max_length=None, remove_unused_columns=False)
    else:
        model = AutoModelForCausalLM.from_pretrained(models["lm"])
        processing_class = AutoTokenizer.from_pretrained(models["lm"])
        args = _trl_args(SFTConfig, scratch, max_length=4096)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processing_class)
    rows_out = len(trainer.train_dataset)
    trainer.train()
    return rows_out, images


def check_trl_dpo(item: dict, media_root: str, models: dict, scratch: Path) -> tuple[int, int]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    dataset = _load_rows(item, media_root)
    images = _decoded_images(dataset)
    if item["images"]:
        model, processing_class = _vision_parts(models)
    else:
        model = AutoModelForCausalLM.from_pretrained(models["lm"])
        processing_class = AutoTokenizer.from_pretrained(models["lm"])
    args = _trl_args(DPOConfig, scratch, max_length=4096, max_prompt_length=None)
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=processing_class)
    rows_out = len(trainer.train_dataset)
    trainer.train()
    return rows_out, images


def check_seed_reader(item: dict, media_root: str, models: dict, scratch: Path) -> tuple[int, int]:
    import pandas

    frame = pandas.read_json(Path(item["folder"]) / item["file"], lines=item["file"].endswith(".jsonl"))
    if list(frame.columns) != ["prompt", "chosen", "reject"]:
        raise AssertionError(f"columns {list(frame.columns)}")
    ok = frame.apply(lambda r: all(isinstance(r[c], str) and r[c] for c in frame.columns), axis=1)
    return int(ok.sum()), 0


CONSUMERS = {"llamafactory": check_llamafactory, "trl_sft": check_trl_sft, "trl_dpo": check_trl_dpo,
             "seed_reader": check_seed_reader}


def main(workdir: Path) -> int:
    manifest = json.loads((workdir / "manifest.json").read_text(encoding="utf-8"))
    media_root = manifest["media_root"]
    scratch = Path(tempfile.mkdtemp(prefix="compat-", dir=workdir))
    print("building a tokenizer and tiny models locally …", flush=True)
    models = build_models(manifest, scratch)
    results = []
    log_path = workdir / "consumers.log"
    log = open(log_path, "w", encoding="utf-8")
    print(f"the trainers' own output goes to {log_path}", flush=True)
    for item in manifest["exports"]:
        for consumer in item["consumers"]:
            print(f"\n===== {item['export']} -> {consumer}", file=log, flush=True)
            try:
                # The trainers print samples and progress: keep the table readable.
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    rows_out, resolved = CONSUMERS[consumer](item, media_root, models, scratch)
                error = ""
            except Exception as exc:  # a consumer's failure is a row of the table, not the end of the run
                rows_out, resolved, error = 0, 0, f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
                traceback.print_exc(file=log)
            ok = not error and rows_out == item["rows"] and resolved == item["images"]
            results.append((item["export"], consumer, item["rows"], rows_out, resolved, item["images"], ok, error))
            print(f"  {'ok ' if ok else 'FAIL'} {item['export']} -> {consumer}", flush=True)
    print()
    header = ("export", "consumer", "rows in", "rows out", "images resolved", "result")
    lines = [(e, c, str(i), str(o), f"{r}/{n}", "ok" if ok else f"FAIL {err}") for e, c, i, o, r, n, ok, err in results]
    widths = [max(len(h), *(len(line[k]) for line in lines)) for k, h in enumerate(header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for line in lines:
        print(" | ".join(v.ljust(w) for v, w in zip(line, widths)))
    failed = sum(1 for r in results if not r[6])
    print(f"\n{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
