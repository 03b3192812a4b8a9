"""The review pages through the test client: permissions, conflicts, escaping, query counts, images."""
import re
from html import unescape

from django.urls import reverse
from PIL import Image

from review.models import Cause, LabelSuspicion, Review, ReviewEdit
from review.services import review_save
from tests.factories import UserFactory
from tests.review.samples import make_sample


HTMX = {"HTTP_HX_REQUEST": "true"}


def post_review(client, sample, version=0, **overrides):
    data = {"cause": Cause.NONE, "corrected_output": "", "note": "", "version": version, "f": "all", "s": "id"}
    data.update(overrides)
    return client.post(reverse("review:save", args=[sample.pk]), data, **HTMX)


def test_pages_require_login(client, sample):
    for url in (reverse("review:home"), reverse("review:queue", args=[sample.label_id]),
                reverse("review:sample", args=[sample.pk]), reverse("review:image", args=["x.png"])):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.post(reverse("review:save", args=[sample.pk])).status_code == 302
    assert not Review.objects.exists()


def test_reviewer_home_shows_assigned_classes_with_progress(reviewer_client, sample, other_sample, reviewer):
    review_save(sample=sample, user=reviewer, cause=Cause.NONE, corrected_output="", label_error=True,
                suggested_label=other_sample.label, note="", version=0)
    html = reviewer_client.get(reverse("review:home")).content.decode()
    mine = html.split("我的类别")[1].split("全部类别")[0]
    assert "商品分类选项" in mine and "换货" not in mine
    assert '<span data-stat="reviewed">1</span> / <span data-stat="total">1</span>（100%）' in mine
    assert "换货" in html  # every class is visible


def test_admin_home_shows_every_reviewer_and_links_to_assignments(client, admin_user, sample, other_sample):
    client.force_login(admin_user)
    html = client.get(reverse("review:home")).content.decode()
    assert "审核员进度" in html and "reviewer1" in html and "reviewer2" in html
    assert reverse("review:assignments", args=[sample.dataset_id]) in html


def test_assignments_are_staff_only_and_saved_from_the_matrix(client, reviewer_client, admin_user, reviewer,
                                                              assigned_category, unassigned_category):
    url = reverse("review:assignments", args=[assigned_category.dataset_id])
    assert reviewer_client.get(url).status_code == 403
    assert reviewer_client.post(url, {f"assign-{unassigned_category.pk}": reviewer.pk}).status_code == 403
    client.force_login(admin_user)
    assert client.get(url).status_code == 200
    response = client.post(url, {f"assign-{assigned_category.pk}": [reviewer.pk],
                                 f"assign-{unassigned_category.pk}": [reviewer.pk]})
    assert response.status_code == 302
    assert set(reviewer.assignments.values_list("category_id", flat=True)) == {assigned_category.pk, unassigned_category.pk}


def test_queue_filters_have_counts_and_filter(reviewer_client, assigned_category, unassigned_category):
    make_sample(assigned_category, "a-1")
    make_sample(assigned_category, "a-2", mode2_correct=False, wrong_category=unassigned_category)
    make_sample(assigned_category, "a-3", mode3_output="长" * 120)
    url = reverse("review:queue", args=[assigned_category.pk])
    response = reviewer_client.get(url)
    filters = {key: count for key, _, count in response.context["filters"]}
    assert filters == {"all": 3, "pending": 1, "mode2_wrong": 1, "unanalysed": 1, "mode3_wrong": 0, "mode3_long": 1,
                       "unreviewed": 3, "flagged": 0, "rerun": 0, "suspect": 0}
    page = reviewer_client.get(url, {"f": "mode2_wrong"}, **HTMX)
    # The partial's rows (a partial sends no template signal: read what the reviewer gets).
    assert re.findall(r'class="mono"><a [^>]*>([^<]+)</a>', page.content.decode()) == ["a-2"]
    assert b'id="queue"' in page.content and b"<html" not in page.content
    longest = reviewer_client.get(url, {"s": "mode3_longest"})
    assert longest.context["page"].object_list[0].external_id == "a-3"


def test_queue_query_count_is_flat(reviewer_client, assigned_category, django_assert_max_num_queries):
    url = reverse("review:queue", args=[assigned_category.pk])
    for i in range(3):
        make_sample(assigned_category, f"q-{i}")
    # 8, and up to 4 more recomputing the class's label-error suspicion (review.suspicion) for its tab.
    with django_assert_max_num_queries(12):
        reviewer_client.get(url)
    for i in range(3, 40):
        make_sample(assigned_category, f"q-{i}")
    with django_assert_max_num_queries(12):
        reviewer_client.get(url)


def test_sample_page_shows_modes_definitions_and_image_info(reviewer_client, assigned_category, unassigned_category):
    s = make_sample(assigned_category, "p-1", mode2_correct=False, wrong_category=unassigned_category)
    s.image_info = {"可见文字": ["选择规格", "尺寸"]}
    s.save()
    html = reviewer_client.get(reverse("review:sample", args=[s.pk])).content.decode()
    assert "模式1" in html and "模式2" in html and "模式3" in html
    assert "✗ 换货" in html  # mode 2's wrong prediction with its mark
    assert "图片中显示商品颜色、规格选项" in html and "用户申请更换商品" in html  # both definitions
    assert "选择规格、尺寸" in html
    assert 'data-key="y"' in html and 'data-key="f"' in html


def test_sample_page_shows_the_teams_picture2text_description_escaped(reviewer_client, assigned_category):
    s = make_sample(assigned_category, "p-3")
    s.description = "申请换货页面 <b>换货原因</b>"
    s.save()
    html = reviewer_client.get(reverse("review:sample", args=[s.pk])).content.decode()
    assert "图片描述" in html and "申请换货页面 &lt;b&gt;换货原因&lt;/b&gt;" in html


def test_sample_page_labels_info_extraction_fields_in_chinese(reviewer_client, assigned_category):
    s = make_sample(assigned_category, "p-2")
    s.image_info = {"visible_text": ["选择规格"], "scene": "规格选择弹窗", "_source": {"job_id": 7, "model": "qwen-vl"}}
    s.save()
    html = reviewer_client.get(reverse("review:sample", args=[s.pk])).content.decode()
    assert "<dt>可见文字</dt><dd>选择规格</dd>" in html and "<dt>场景</dt>" in html
    assert "visible_text" not in html and "_source" not in html
    assert "<dt>来源</dt><dd>job_id: 7，model: qwen-vl</dd>" in html

def test_sample_page_query_count_does_not_grow(reviewer_client, reviewer, assigned_category, django_assert_num_queries):
    first = make_sample(assigned_category, "n-000")
    url = reverse("review:sample", args=[first.pk])
    reviewer_client.get(url)  # warm caches (content types, session)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        reviewer_client.get(url)
    for i in range(1, 30):
        other = make_sample(assigned_category, f"n-{i:03d}")
        review_save(sample=other, user=reviewer, cause=Cause.NONE, corrected_output="", label_error=False,
                    suggested_label=None, note="", version=0)
    version = 0
    for note in ("a", "b", "c", "d", "e"):
        version = review_save(sample=first, user=reviewer, cause=Cause.MODEL_WEAK, corrected_output="", label_error=False,
                              suggested_label=None, note=note, version=version).version
    # The reviewed page prefetches its review and edit history: a fixed number of extra queries.
    with django_assert_num_queries(len(small.captured_queries) + 1):
        response = reviewer_client.get(url)
    assert response.content.decode().count('class="edit"') == 5


def test_saving_moves_to_the_next_sample_without_a_full_page(reviewer_client, reviewer, assigned_category):
    a, b = make_sample(assigned_category, "m-1"), make_sample(assigned_category, "m-2")
    response = post_review(reviewer_client, a, cause=Cause.MODEL_WEAK, note="看不清")
    assert response.status_code == 200
    assert f'data-sample-id="{b.pk}"' in response.content.decode() and b"<html" not in response.content
    assert response["HX-Push-Url"] == f"/samples/{b.pk}/?f=all&s=id"
    review = Review.objects.get(sample=a)
    assert (review.cause, review.note, review.reviewer, review.version) == (Cause.MODEL_WEAK, "看不清", reviewer, 1)


def test_keep_action_saves_correct_and_keep(reviewer_client, assigned_category):
    a = make_sample(assigned_category, "k-1")
    mode3 = a.reasonings.get(mode=3).output
    post_review(reviewer_client, a, action="keep", cause="", corrected_output=mode3, label_error="1")
    review = Review.objects.get(sample=a)
    assert (review.cause, review.corrected_output, review.label_error) == (Cause.NONE, "", False)


def test_missing_cause_is_a_400_that_keeps_the_input(reviewer_client, assigned_category):
    a = make_sample(assigned_category, "c-1")
    response = post_review(reviewer_client, a, cause="", note="我的备注")
    assert response.status_code == 400 and "请选择错误原因" in response.content.decode()
    assert "我的备注" in response.content.decode() and not Review.objects.exists()


def test_unassigned_reviewer_gets_403_and_nothing_changes(reviewer_client, other_sample, other_reviewer, reviewer):
    review_save(sample=other_sample, user=other_reviewer, cause=Cause.NONE, corrected_output="", label_error=False,
                suggested_label=None, note="原来的", version=0)
    response = post_review(reviewer_client, other_sample, version=1, cause=Cause.LABEL_WRONG, note="改掉")
    assert response.status_code == 403
    review = Review.objects.get(sample=other_sample)
    assert (review.note, review.version, review.reviewer) == ("原来的", 1, other_reviewer)
    assert ReviewEdit.objects.count() == 1
    page = reviewer_client.get(reverse("review:sample", args=[other_sample.pk])).content.decode()
    assert "只读" in page and 'id="review-form"' not in page


def test_version_conflict_is_409_with_a_clear_message(reviewer_client, admin_user, sample):
    review_save(sample=sample, user=admin_user, cause=Cause.MODEL_WEAK, corrected_output="", label_error=False,
                suggested_label=None, note="管理员先改了", version=0)
    response = post_review(reviewer_client, sample, version=0, cause=Cause.NONE, note="我的")
    assert response.status_code == 409
    html = response.content.decode()
    assert "admin" in html and "保存失败" in html and "我的" in html
    assert 'name="version" value="1"' in html  # a deliberate second save may now overwrite
    assert Review.objects.get(sample=sample).note == "管理员先改了"


def test_model_output_and_notes_are_escaped(reviewer_client, reviewer, assigned_category):
    s = make_sample(assigned_category, "x-1", mode3_output='<script>alert("x")</script>\n类别：商品分类选项')
    review_save(sample=s, user=reviewer, cause=Cause.NONE, corrected_output="<img src=x onerror=alert(1)>",
                label_error=False, suggested_label=None, note="<b>note</b>", version=0, correction_override=True)
    html = reviewer_client.get(reverse("review:sample", args=[s.pk])).content.decode()
    assert '<script>alert("x")</script>' not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "<b>note</b>" not in html


def test_a_predicted_class_name_is_escaped_in_the_queue_and_on_the_sample_page(reviewer_client, assigned_category):
    from review.models import Mode, Reasoning

    sample = make_sample(assigned_category, "x-2")
    Reasoning.objects.filter(sample=sample, mode=Mode.WITH_DEFINITIONS).update(
        predicted_name="<img src=x onerror=alert(1)>", is_correct=False)
    Reasoning.objects.filter(sample=sample, mode=Mode.LIMITED).update(predicted_name="<i>x</i>", is_correct=None)
    for url in (reverse("review:queue", args=[assigned_category.pk]), reverse("review:sample", args=[sample.pk])):
        html = reviewer_client.get(url).content.decode()
        assert "<img src=x" not in html and "✗ &lt;img src=x onerror=alert(1)&gt;" in html, url
        assert "<i>x</i>" not in html and "&lt;i&gt;x&lt;/i&gt;" in html, url


def test_history_and_admin_restore_through_the_page(client, reviewer_client, reviewer, admin_user, sample):
    for version, note in enumerate(("第一版", "第二版")):
        review_save(sample=sample, user=reviewer, cause=Cause.MODEL_WEAK, corrected_output="", label_error=False,
                    suggested_label=None, note=note, version=version)
    first = ReviewEdit.objects.get(version=1)
    html = reviewer_client.get(reverse("review:sample", args=[sample.pk])).content.decode()
    assert "版本 1" in html and "版本 2" in html and "恢复此版本" not in html
    assert reviewer_client.post(reverse("review:restore", args=[first.pk]), **HTMX).status_code == 403
    assert Review.objects.get(sample=sample).note == "第二版"
    client.force_login(admin_user)
    assert "恢复此版本" in client.get(reverse("review:sample", args=[sample.pk])).content.decode()
    response = client.post(reverse("review:restore", args=[first.pk]), **HTMX)
    assert response.status_code == 200 and "已恢复到版本 1" in response.content.decode()
    assert Review.objects.get(sample=sample).note == "第一版"


def test_images_are_served_with_their_type_and_nosniff_and_confined(reviewer_client, media_root, client):
    Image.new("RGB", (8, 8), "red").save(media_root / "a.png", format="PNG")
    (media_root / "evil.png").write_text("<html><script>alert(1)</script></html>")
    (media_root.parent / "secret.png").write_bytes((media_root / "a.png").read_bytes())
    response = reviewer_client.get(reverse("review:image", args=["a.png"]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"
    assert reviewer_client.get(reverse("review:image", args=["evil.png"])).status_code == 404
    assert reviewer_client.get("/images/%2e%2e/secret.png").status_code == 404
    assert reviewer_client.get("/images/..%2fsecret.png").status_code == 404


def test_sample_and_queue_404_for_unknown_ids(reviewer_client):
    assert reviewer_client.get(reverse("review:sample", args=[999])).status_code == 404
    assert reviewer_client.get(reverse("review:queue", args=[999])).status_code == 404


def test_a_reviewer_without_assignments_sees_a_hint(client, sample):
    client.force_login(UserFactory(username="newbie"))
    assert "还没有给你分配类别" in client.get(reverse("review:home")).content.decode()


def test_home_query_count_does_not_grow_with_classes_or_samples(client, admin_user, dataset, reviewer,
                                                                django_assert_max_num_queries):
    from tests.factories import AssignmentFactory, CategoryFactory

    client.force_login(admin_user)
    category = CategoryFactory(dataset=dataset)
    AssignmentFactory(reviewer=reviewer, category=category)
    make_sample(category, "h-0")
    with django_assert_max_num_queries(9):
        client.get(reverse("review:home"))
    for i in range(10):
        c = CategoryFactory(dataset=dataset)
        AssignmentFactory(reviewer=UserFactory(), category=c)
        make_sample(c, f"h-{i + 1}")
    with django_assert_max_num_queries(9):
        assert client.get(reverse("review:home")).status_code == 200


def test_previous_and_next_over_htmx_return_only_the_sample_region(reviewer_client, assigned_category):
    a, b = make_sample(assigned_category, "g-1"), make_sample(assigned_category, "g-2")
    page = reviewer_client.get(reverse("review:sample", args=[a.pk]), {"f": "all", "s": "id"})
    assert page.context["next_url"] == f"/samples/{b.pk}/?f=all&s=id" and page.context["previous_url"] == ""
    partial = reviewer_client.get(page.context["next_url"], **HTMX)
    html = partial.content.decode()
    assert html.lstrip().startswith('<div id="sample-page"') and f'data-sample-id="{b.pk}"' in html
    assert "<html" not in html and "第 2 / 2 条" in html


def test_a_place_deep_in_a_big_queue_is_shown_without_counting_it(reviewer_client, assigned_category, monkeypatch):
    """Near either end the place is exact (counted from the nearer end); in between, the page says
    the sample is in the middle, with the queue's size."""
    from review import selectors

    monkeypatch.setattr(selectors, "POSITION_EXACT_WITHIN", 2)
    samples = [make_sample(assigned_category, f"m-{i}") for i in range(6)]
    shown = [reviewer_client.get(reverse("review:sample", args=[s.pk]), {"f": "all", "s": "id"}).content.decode()
             for s in samples]
    assert ["第 1 / 6 条" in shown[0], "第 2 / 6 条" in shown[1], "第 5 / 6 条" in shown[4], "第 6 / 6 条" in shown[5]] == [True] * 4
    assert "在中部：前后各超过 2 条（共 6 条）" in shown[2] and "在中部：前后各超过 2 条（共 6 条）" in shown[3]


def test_htmx_history_restore_gets_the_whole_page(reviewer_client, assigned_category):
    a = make_sample(assigned_category, "r-1")
    response = reviewer_client.get(reverse("review:sample", args=[a.pk]), HTTP_HX_REQUEST="true",
                                   HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert b"<html" in response.content


def test_queue_paginates_fifty_per_page(reviewer_client, assigned_category):
    for i in range(55):
        make_sample(assigned_category, f"pg-{i:02d}")
    url = reverse("review:queue", args=[assigned_category.pk])
    first, second = reviewer_client.get(url), reviewer_client.get(url, {"page": 2})
    assert len(first.context["page"].object_list) == 50
    assert [s.external_id for s in second.context["page"].object_list] == [f"pg-{i}" for i in range(50, 55)]
    assert "第 2 / 2 页" in second.content.decode()


def test_without_javascript_saving_redirects_to_the_next_sample(reviewer_client, assigned_category):
    a, b = make_sample(assigned_category, "w-1"), make_sample(assigned_category, "w-2")
    data = {"cause": Cause.NONE, "version": 0, "f": "unreviewed", "s": "id"}
    response = reviewer_client.post(reverse("review:save", args=[a.pk]), data)
    assert response.status_code == 302 and response["Location"] == f"/samples/{b.pk}/?f=unreviewed&s=id"
    page = reviewer_client.get(response["Location"]).content.decode()
    assert "已保存：w-1" in page and "第 1 / 1 条" in page


def _table_rows(html: str) -> list[dict]:
    """The queue table's rows as a reviewer reads them: each cell's text, the sample link and the
    export badge's class."""
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [" ".join(unescape(re.sub(r"<[^>]+>", "", cell)).split())
                 for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        badge = re.search(r'data-export-status="[^"]+"><span class="badge (\w+)"', row).group(1)
        rows.append({"cells": cells, "href": unescape(re.search(r'<a href="([^"]+)"', row).group(1)),
                     "export_badge": badge})
    return rows


def test_each_queue_row_shows_the_samples_verdicts_review_and_export(reviewer_client, reviewer, settings,
                                                                      assigned_category, unassigned_category):
    from review.models import Mode, Reasoning

    settings.TRAINSET_MAX_LENGTH = 30
    plain = make_sample(assigned_category, "r-1")
    wrong = make_sample(assigned_category, "r-2", mode2_correct=False, wrong_category=unassigned_category)
    flagged = make_sample(assigned_category, "r-3", mode2_correct=False, wrong_category=unassigned_category)
    review_save(sample=flagged, user=reviewer, cause=Cause.LABEL_WRONG, corrected_output="", label_error=True,
                suggested_label=unassigned_category, note="", version=0)
    unsure = make_sample(assigned_category, "r-4")
    review_save(sample=unsure, user=reviewer, cause=Cause.NONE, corrected_output="", label_error=True,
                suggested_label=None, suggestion_uncertain=True, note="", version=0)
    long = make_sample(assigned_category, "r-5", mode3_output="长" * 40 + "\n类别：商品分类选项")
    silent = make_sample(assigned_category, "r-6")
    Reasoning.objects.filter(sample=silent, mode=Mode.LIMITED).delete()
    kept = make_sample(assigned_category, "r-7")
    review_save(sample=kept, user=reviewer, cause=Cause.NONE, corrected_output="", label_error=False,
                suggested_label=None, note="", version=0)
    suspected = make_sample(assigned_category, "r-8")
    suspected.label_suspicion, suspected.sort_suspicion = 0.9, 0
    suspected.save(update_fields=["label_suspicion", "sort_suspicion"])
    evidence = {"score": 0.9, "suggested_category": unassigned_category}
    LabelSuspicion.objects.update_or_create(sample=suspected, defaults=evidence)

    url = reverse("review:queue", args=[assigned_category.pk])
    response = reviewer_client.get(url, {"f": "all", "s": "id"})
    rows = _table_rows(response.content.decode())
    right, other = "✓ 商品分类选项", "✗ 换货"
    left_out = "标签错误，不导出（列入 trainset_error.md）"
    m3 = lambda sample: str(Reasoning.objects.get(sample=sample, mode=Mode.LIMITED).length)  # noqa: E731
    assert [row["cells"] for row in rows] == [
        ["1", "r-1", right, right, m3(plain), "未审核", "导出（保留模型输出）", ""],
        ["2", "r-2", other, right, m3(wrong), "未审核 待分析原因", "导出（保留模型输出）", ""],
        ["3", "r-3", other, right, m3(flagged), "(2) 数据集标签错误 标签错误 → 换货", left_out, "reviewer1"],
        ["4", "r-4", right, right, m3(unsure), "无错误 标签错误（不确定）", left_out, "reviewer1"],
        ["5", "r-5", right, right, m3(long), "未审核", "模式3超出字数限制", ""],
        ["6", "r-6", right, "无输出", "—", "未审核", "没有模式3推理", ""],
        ["7", "r-7", right, right, m3(kept), "无错误", "导出（保留模型输出）", "reviewer1"],
        ["8", "r-8", right, right, m3(suspected), "未审核 疑似 0.90 → 换货", "导出（保留模型输出）", ""],
    ]
    assert rows[0]["href"] == f"/samples/{plain.pk}/?f=all&s=id"
    assert [row["export_badge"] for row in rows] == ["ok", "ok", "warn", "warn", "warn", "warn", "ok", "ok"]
    html = response.content.decode()
    assert f'<span class="badge warn">{m3(long)}</span>' in html  # over the limit: marked
    assert 'title="疑似标签错误：证据指向 换货"' in html
