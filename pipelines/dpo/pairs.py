"""One prompt → checked pairs: prepare (messages or a model-free reject), generate, build the pairs;
and the preview, which runs the same code on the first prompts without writing anything."""
from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from ..jobs.kinds import ItemFailed
from . import checks
from .model import display_messages, llm_for, model_candidates, model_messages
from .params import PREVIEW_DEFAULT, STRATEGIES, TRUNCATE_KEEP, clean_params
from .rejects import drop_list_items, drop_reasoning, near_miss_index, truncate_answer
from .sources import PromptRecord, iter_source_records, source_labels

def prepare_record(params: dict, record: PromptRecord, *, cache_token: Any = None) -> dict[str, Any]:
    """What one prompt needs before any model call: the messages, or the model-free reject itself."""
    strategy = params["strategy"]
    name = strategy["name"]
    payload: dict[str, Any] = {"record": asdict(record)}
    if name == "model":
        payload["messages"] = model_messages(strategy, record)
        return payload
    if name == "truncate":
        candidate = {"rejected": truncate_answer(record.chosen, strategy.get("keep", TRUNCATE_KEEP))}
    elif name == "drop_list_items":
        candidate = {"rejected": drop_list_items(record.chosen)}
    elif name == "drop_reasoning":
        candidate = {"rejected": drop_reasoning(record.chosen)}
    elif name == "near_miss":
        other = near_miss_index(params["source"], cache_token).near_miss(record)
        candidate = {"rejected": other.chosen, "near_miss_of": other.key}
    else:
        raise ItemFailed("bad_params", f"未知策略 {name}")
    payload["candidates"] = [candidate]
    return payload


async def generate(llm, payload: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    """The reject candidates for one prepared prompt (a model call only for the model strategy)."""
    if "candidates" in payload:
        return payload["candidates"]
    return await model_candidates(llm, params["strategy"], payload["messages"])


def build_pairs(record: PromptRecord | dict, candidates: list[dict[str, Any]], strategy: dict) -> list[dict[str, Any]]:
    """One pair per candidate, each checked (per-pair checks; boilerplate is batch-level)."""
    if isinstance(record, dict):
        record = PromptRecord(**{**record, "images": tuple(record.get("images") or ())})
    pairs = []
    for number, candidate in enumerate(candidates, start=1):
        rejected = candidate["rejected"] or ""
        result = checks.check_pair(record.prompt, record.chosen, rejected, finish_reason=candidate.get("finish_reason"))
        metrics = dict(result.metrics)
        for extra in ("finish_reason", "near_miss_of", "selection", "selected_from", "mean_logprob"):
            if candidate.get(extra):
                metrics[extra] = candidate[extra]
        pairs.append({
            "key": record.key if len(candidates) == 1 else f"{record.key}#{number}",
            "source": record.source,
            "prompt": record.prompt,
            "chosen": record.chosen,
            "rejected": rejected,
            "images": list(record.images),
            "strategy": strategy["name"],
            "issues": result.issues,
            "metrics": metrics,
        })
    return pairs


# --------------------------------------------------------------------------- preview
def preview(params: dict[str, Any], n: int = PREVIEW_DEFAULT) -> dict[str, Any]:
    """Run the strategy on the first `n` prompts, writing nothing: exactly the pairs the job would store.

    Returns {"pairs": [...], "failures": [{"key", "kind", "message"}], "report", "context"}; the context
    names the endpoint, model and template, and shows the first request as it is sent.
    """
    params = clean_params(params)
    records = []
    for record in iter_source_records(params["source"]):
        if len(records) >= n or (params.get("limit") and len(records) >= params["limit"]):
            break
        records.append(record)
    strategy = params["strategy"]

    # Reading the source (and the near-miss index) is sync database work: done before the event loop.
    prepared: list[tuple[PromptRecord, Any]] = []
    for record in records:
        try:
            prepared.append((record, prepare_record(params, record)))
        except ItemFailed as exc:
            prepared.append((record, exc))

    async def run() -> list[tuple[PromptRecord, Any]]:
        client, owned = llm_for(strategy) if strategy["name"] == "model" else (None, False)
        try:
            async def one(record: PromptRecord, payload: Any):
                if isinstance(payload, ItemFailed):
                    return record, payload
                try:
                    return record, await generate(client, payload, params)
                except ItemFailed as exc:
                    return record, exc

            return await asyncio.gather(*(one(r, p) for r, p in prepared))
        finally:
            if owned:
                await client.aclose()

    outcomes = asyncio.run(run()) if prepared else []
    pairs, failures = [], []
    for record, outcome in outcomes:
        if isinstance(outcome, ItemFailed):
            failures.append({"key": record.key, "prompt": record.prompt, "kind": outcome.kind, "message": outcome.message})
        else:
            pairs.extend(build_pairs(record, outcome, strategy))
    results = [checks.PairResult(p["issues"], p["metrics"]) for p in pairs]
    clusters = checks.find_boilerplate([p["prompt"] for p in pairs], [p["rejected"] for p in pairs])
    report = checks.batch_report([r.issues for r in results], clusters)
    return {
        "pairs": pairs,
        "failures": failures,
        "report": report,
        "context": job_context(params, records[0] if records else None),
        "params": params,
    }


def job_context(params: dict[str, Any], first: PromptRecord | None = None) -> dict[str, Any]:
    """What produced the rejects, for the preview and the report: strategy, endpoint, model, template."""
    strategy = params["strategy"]
    context: dict[str, Any] = {
        "source": params["source"],
        "source_label": source_labels().get(params["source"]["name"], ""),
        "strategy": strategy["name"],
        "strategy_label": STRATEGIES.get(strategy["name"], ""),
    }
    if strategy["name"] == "model":
        context.update(
            endpoint=strategy["base_url"], model=strategy["model"], template=strategy["template"],
            system=strategy.get("system", ""), mode=strategy["mode"], temperature=strategy.get("temperature"),
            top_p=strategy.get("top_p"), n=strategy.get("n", 1), max_tokens=strategy.get("max_tokens"),
        )
        if first is not None:
            context["example_messages"] = display_messages(model_messages(strategy, first))
    return context
