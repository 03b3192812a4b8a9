"""Class names: the known class a name in the team's files denotes (after the shortening rules), the
closest ones for an error message, and every label of an import mapped to the class it is stored
under — refusing, before anything is written, names that would need new classes."""
from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import ApplicationError
from review.parsing import match_category_name, normalize_name

from .planning import INFO, MANIFEST, MODE, TRAIN, team_file_class_name
from .staging import Staging


def _underscored(name: str) -> str:
    """A class name as the batch script put it in a file name (spaces and parentheses → `_`)."""
    return re.sub(r"[\s()（）]", "_", name)


def resolve_class_name(name: str, known: Sequence[str]) -> str | None:
    """The one class of `known` that `name` denotes after the shortening rules, else None."""
    name = team_file_class_name(name)
    if not name:
        return None
    if name in known:
        return name
    underscored = [k for k in known if _underscored(k) == name or _underscored(k).strip("_") == name.strip("_")]
    if len(underscored) == 1:
        return underscored[0]
    return match_category_name(name, list(known))


def closest_class_names(name: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Up to `n` known names that look most like `name` (for an error message)."""
    by_norm: dict[str, str] = {}
    for k in known:
        by_norm.setdefault(normalize_name(_underscored(k).replace("_", " ")) or k, k)
    wanted = normalize_name(team_file_class_name(name).replace("_", " "))
    return [by_norm[m] for m in difflib.get_close_matches(wanted, list(by_norm), n=n, cutoff=0.34)]


@dataclass
class Classes:
    """Every label name of the import mapped to the class it will be stored under."""

    names: list[str]  # the classes samples may be filed under: known, then new
    by_label: dict[str, str | None]
    new: list[str]


def resolve_classes(staging: Staging, known: list[str], *, create_classes: bool) -> Classes:
    """Map every class name of the import to a class; refuse (nothing written) when that would
    create classes without `create_classes`, listing them with the closest known names."""
    db = staging.db
    hard_kinds = (MODE, MANIFEST)

    def names_of(*kinds: str) -> list[str]:
        marks = ",".join("?" * len(kinds))
        return [name for (name,) in db.execute(
            f"SELECT name FROM labels WHERE kind IN ({marks}) GROUP BY name ORDER BY MIN(seq)", kinds)]

    def origins(name: str) -> list[str]:
        distinct = [o for (o,) in db.execute(
            "SELECT origin FROM labels WHERE name = ? AND kind IN (?, ?) GROUP BY origin ORDER BY MIN(seq) LIMIT 3",
            (name, *hard_kinds))]
        count = db.execute("SELECT COUNT(DISTINCT origin) FROM labels WHERE name = ? AND kind IN (?, ?)",
                           (name, *hard_kinds)).fetchone()[0]
        return distinct + ([f"等 {count} 处"] if count > 3 else [])

    train_names = names_of(TRAIN)
    names = list(known)
    by_label: dict[str, str | None] = {}
    new: list[str] = []
    unknown: dict[str, list[str]] = {}
    sources: dict[str, list[str]] = {}
    for name in names_of(*hard_kinds):
        resolved = resolve_class_name(name, names)
        if resolved is None:
            from_train = resolve_class_name(name, train_names)
            resolved = from_train or team_file_class_name(name)
            names.append(resolved)
            new.append(resolved)
            unknown[resolved] = closest_class_names(resolved, known)
            sources[resolved] = [*(["train.json"] if from_train else []), *origins(name)]
        elif resolved in new:
            sources[resolved] += origins(name)
        by_label[name] = resolved
    if new and not create_classes:
        parts = []
        for name in new:
            near = f"；最接近的已有类别：{'、'.join(unknown[name])}" if unknown[name] else ""
            parts.append(f"“{name}”（{'，'.join(dict.fromkeys(sources[name]))}{near}）")
        head = (f"数据集还没有类别，导入需要新建 {len(new)} 个" if not known
                else f"{len(new)} 个类别名称对应不到已有类别")
        raise ApplicationError(
            f"{head}，没有导入任何内容：{'；'.join(parts)}。"
            "如果它们就是要新建的类别，请加 --create-classes；如果是已有类别的简写，请在 categories.json 中"
            "给出完整名称（或改正文件夹/文件名）。",
            code="unknown_classes", extra={"unknown": unknown},
        )
    # Soft labels (train.json, the info files) only ever name classes of this import.
    for label in [*train_names, *names_of(INFO)]:
        if label not in by_label:
            by_label[label] = resolve_class_name(label, names)
    return Classes(names=names, by_label=by_label, new=new)
