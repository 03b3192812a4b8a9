"""How many records each source contributes (caps, weights, the global limit) and which split each
unit of records goes to: the builder's limit and split steps, over spool indexes."""
from __future__ import annotations

from .options import Source


def source_quotas(available: list[int], sources: list[Source], limit: int | None) -> list[int]:
    """How many records each source contributes: caps, then weights, then the global limit."""
    caps = [min(n, s.cap) if s.cap is not None else n for n, s in zip(available, sources)]
    weighted = [s.weight for s in sources if s.weight]
    if not weighted:
        if limit is None:
            return caps
        quotas, left = [], limit
        for n in caps:  # the first records in source order, as the team's script's --limit
            quotas.append(min(n, left))
            left -= quotas[-1]
        return quotas
    weights = [s.weight or 0.0 for s in sources]
    total_weight = sum(weights)
    # The largest total whose weighted shares every source can fill.
    feasible = min(caps[i] * total_weight / w for i, w in enumerate(weights) if w > 0)
    total = int(min(feasible, limit) if limit is not None else feasible)
    exact = [total * w / total_weight for w in weights]
    quotas = [min(int(x), c) for x, c in zip(exact, caps)]
    # Hand out what rounding left over, largest remainder first (ties: source order).
    order = sorted(range(len(sources)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    short = total - sum(quotas)
    for i in order:
        if short <= 0:
            break
        if weights[i] > 0 and quotas[i] < caps[i]:
            quotas[i] += 1
            short -= 1
    return quotas


def assign_splits(units: list[list[int]], ratio: tuple[float, ...]) -> list[list[int]]:
    """Assign units (lists of spool indexes; a near-dup cluster is one unit) to splits.

    Units come in shuffled order; each goes to the first split that still has room for it, or —
    when none has — to the split furthest below its target. Deterministic for a given order.
    """
    total = sum(len(u) for u in units)
    weight = sum(ratio)
    exact = [total * r / weight for r in ratio]
    targets = [int(x) for x in exact]
    # Largest remainder, so 8 records at 0.8/0.1/0.1 give 6/1/1 rather than 8/0/0.
    for k in sorted(range(len(ratio)), key=lambda i: (-(exact[i] - targets[i]), i))[:total - sum(targets)]:
        targets[k] += 1
    splits: list[list[int]] = [[] for _ in ratio]
    for unit in units:
        for k, target in enumerate(targets):
            if len(splits[k]) + len(unit) <= target:
                splits[k].extend(unit)
                break
        else:
            k = max(range(len(ratio)), key=lambda i: (targets[i] - len(splits[i]), -i))
            splits[k].extend(unit)
    return splits
