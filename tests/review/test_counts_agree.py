"""Every place that shows a class's numbers shows the same ones (review.rules), on one fixture:
home, queue, analysis overview, class page, 分类分析.md, 模式2错误.csv, trainset_error.md, the API
and the export report. The fixture's b2 has an unparseable mode-2 answer, which pages once counted
differently."""
import csv
import io
import json
import re
from html.parser import HTMLParser

from django.urls import reverse

from review.exports import dataset_analysis_markdown, mode2_errors_csv, trainset_error_markdown, trainset_export

# By hand (see tests/review/fixtures.py): total, reviewed, mode-2 errors, analysed, label errors, pending.
EXPECTED = {
    "商品分类选项": {"total": 4, "reviewed": 3, "mode2_errors": 2, "analysed": 2, "label_errors": 1, "pending": 0},
    "换货": {"total": 4, "reviewed": 3, "mode2_errors": 3, "analysed": 3, "label_errors": 0, "pending": 3},
    "退货退款": {"total": 1, "reviewed": 0, "mode2_errors": 0, "analysed": 0, "label_errors": 0, "pending": 1},
}
EXPORTED_ROWS = 4  # a1, a2, a3 (corrected), b4


class StatParser(HTMLParser):
    """Collects `data-stat` values inside each `data-stat-class` element: {class pk: [{stat: n}]}."""

    def __init__(self):
        super().__init__()
        self.found: dict[int, list[dict[str, int]]] = {}
        self._scope: list[tuple[str, int | None]] = []
        self._stat: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("br", "input", "img", "meta", "link"):
            return
        scope = int(attrs["data-stat-class"]) if "data-stat-class" in attrs else None
        if scope is not None:
            self.found.setdefault(scope, []).append({})
        self._scope.append((tag, scope))
        if "data-stat" in attrs:
            self._stat = attrs["data-stat"]

    def handle_endtag(self, tag):
        while self._scope:
            open_tag, _ = self._scope.pop()
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self._stat and data.strip():
            current = next((s for _, s in reversed(self._scope) if s is not None), None)
            if current is not None:
                self.found[current][-1][self._stat] = int(data.strip())
            self._stat = None


def page_stats(client, url) -> dict[int, list[dict[str, int]]]:
    response = client.get(url)
    assert response.status_code == 200
    parser = StatParser()
    parser.feed(response.content.decode())
    return parser.found


def test_every_page_file_and_api_shows_the_same_counts(client, scene, tmp_path):
    client.force_login(scene.admin)
    categories = {c.name: c for c in (scene.a, scene.b, scene.c)}
    dataset = scene.dataset

    home = page_stats(client, reverse("review:home") + f"?dataset={dataset.pk}")
    overview = page_stats(client, reverse("analysis:overview", args=[dataset.pk]))
    markdown = "".join(dataset_analysis_markdown(dataset=dataset))
    errors_csv = list(csv.reader(io.StringIO("".join(mode2_errors_csv(dataset=dataset)).lstrip("\ufeff"))))[1:]
    trainset_error = "".join(trainset_error_markdown(dataset=dataset))
    export = trainset_export(dataset=dataset, fmt="jsonl", path=tmp_path / "train.jsonl")
    rows = (tmp_path / "train.jsonl").read_text(encoding="utf-8").splitlines()

    for name, expected in EXPECTED.items():
        category = categories[name]
        seen = {}
        seen["home"] = home[category.pk]
        seen["overview"] = overview[category.pk]
        seen["class page"] = page_stats(client, reverse("analysis:class", args=[dataset.pk, category.pk]))[category.pk]
        for where, blocks in seen.items():
            for block in blocks:
                assert block == expected, f"{where} shows {block} for {name}, expected {expected}"

        queue = client.get(reverse("review:queue", args=[category.pk])).context["filters"]
        filters = {key: n for key, _, n in queue}
        assert {
            "total": filters["all"], "reviewed": filters["all"] - filters["unreviewed"],
            "mode2_errors": filters["mode2_wrong"], "analysed": filters["mode2_wrong"] - filters["unanalysed"],
            "label_errors": filters["flagged"], "pending": filters["pending"],
        } == expected, f"queue of {name}"
        pending_list = client.get(reverse("review:queue", args=[category.pk]), {"f": "pending"}).context["page"]
        assert pending_list.paginator.count == expected["pending"]

        api = client.get(reverse("api:category-stats", args=[category.pk])).json()
        assert {key: api[key] for key in expected} == expected, f"API of {name}"

        section = markdown.split(f"## {name}\n")[1].split("\n## ")[0]
        assert f"训练集中共有{expected['total']}个样本" in section
        assert f"模式2推理错误（{expected['mode2_errors']} 个）" in section
        assert f"未标注 {expected['mode2_errors'] - expected['analysed']}" in section
        assert sum(1 for row in errors_csv if row[0] == name) == expected["mode2_errors"]
        listed = trainset_error.split(f"## {name}\n")[1].split("\n## ")[0] if f"## {name}\n" in trainset_error else ""
        assert len(re.findall(r"^- ", listed, re.M)) == expected["label_errors"]
        assert export.report["pending_by_class"].get(name, 0) == expected["pending"]
        assert len(export.report["label_errors"].get(name, [])) == expected["label_errors"]

    assert len(rows) == export.row_count == EXPORTED_ROWS
    assert {json.loads(r)["id"] for r in rows} == {"a1", "a2", "a3", "b4"}
    assert export.report["pending"] == sum(e["pending"] for e in EXPECTED.values())
