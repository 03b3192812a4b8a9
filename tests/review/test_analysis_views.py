"""The analysis pages through the test client: numbers shown, permissions, escaping, query counts."""
import pytest
from django.urls import reverse

from pipelines.models import Export
from review.models import Category, DefinitionRevision, Mode, Reasoning


@pytest.fixture
def reviewer_client(client, scene):
    client.force_login(scene.reviewer)
    return client


@pytest.fixture
def admin_client(client, scene):
    client.force_login(scene.admin)
    return client


def test_login_required(client, scene):
    response = client.get(reverse("analysis:overview", args=[scene.dataset.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_home_redirects_to_the_only_dataset(reviewer_client, scene):
    response = reviewer_client.get(reverse("analysis:home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("analysis:overview", args=[scene.dataset.pk])


def test_overview_answers_the_four_questions(reviewer_client, scene, django_assert_max_num_queries):
    with django_assert_max_num_queries(14):
        response = reviewer_client.get(reverse("analysis:overview", args=[scene.dataset.pk]))
    assert response.status_code == 200
    text = response.content.decode()
    assert "建议修订以下类别的定义" in text and "换货</a>（2/3）" in text
    assert "模式2对→模式3错 <strong>1</strong> 个，模式2错→模式3对 <strong>2</strong> 个" in text
    assert 'data-chart="accuracy"' in text and 'id="accuracy-chart-data"' in text
    assert "<script>" not in text.split("<body")[1].replace('<script src=', "").replace(
        '<script id="accuracy-chart-data" type="application/json">', "")
    # Reviewers see why they cannot export, not the form.
    assert "只有管理员可以导出训练集" in text


def test_class_page_lists_errors_and_escapes_model_output(reviewer_client, scene, django_assert_max_num_queries):
    Reasoning.objects.filter(sample=scene.samples["b2"], mode=Mode.WITH_DEFINITIONS).update(
        predicted_name="<script>alert('x')</script>"
    )
    url = reverse("analysis:class", args=[scene.dataset.pk, scene.b.pk])
    with django_assert_max_num_queries(13):
        response = reviewer_client.get(url)
    text = response.content.decode()
    assert response.status_code == 200
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "<script>alert" not in text
    assert "b3" in text and "(1) 类别定义有交集" in text
    assert "建议修订定义" in text
    assert f"/jobs/rerun-wrong/{scene.b.pk}/?mode=2" in text
    # Only staff get the edit form.
    assert 'name="text"' not in text


def test_class_of_another_dataset_is_404(reviewer_client, scene):
    from tests.factories import CategoryFactory

    foreign = CategoryFactory(name="别的类")
    response = reviewer_client.get(reverse("analysis:class", args=[scene.dataset.pk, foreign.pk]))
    assert response.status_code == 404


def test_confusion_page(reviewer_client, scene):
    response = reviewer_client.get(reverse("analysis:confusion", args=[scene.dataset.pk]) + "?mode=2")
    assert response.status_code == 200
    assert response.context["table"].rows[1] == [2, 1, 0, 1]


def test_markdown_downloads(reviewer_client, scene):
    response = reviewer_client.get(reverse("analysis:dataset_markdown", args=[scene.dataset.pk]))
    assert response["Content-Type"].startswith("text/markdown")
    body = b"".join(response.streaming_content).decode()
    assert "训练集中共有4个样本" in body
    response = reviewer_client.get(reverse("analysis:trainset_error", args=[scene.dataset.pk]))
    assert "- a4（建议类别：换货）" in b"".join(response.streaming_content).decode()


def test_mode2_errors_download_as_csv_a_spreadsheet_opens_safely(reviewer_client, scene):
    import csv
    import io

    from review.models import Review

    Review.objects.filter(sample=scene.samples["b3"]).update(note='=HYPERLINK("http://evil.example","点")')
    response = reviewer_client.get(reverse("analysis:mode2_errors_csv", args=[scene.dataset.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")  # Excel reads the Chinese as UTF-8
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0] == ["类别", "样本ID", "模式2预测", "原因", "标签错误", "建议类别", "备注", "审核人", "疑似标签错误度"]
    by_id = {row[1]: row for row in rows[1:]}
    assert list(by_id) == ["a2", "a4", "b2", "b3", "b4"], "mode 2's misses only, by class then id"
    assert by_id["a4"][3:6] == ["(2) 数据集标签错误", "是", "换货"]
    assert by_id["b2"][2] == "（无法解析）" and by_id["b2"][3] == "(3) 模型能力不足"
    assert by_id["b3"][6] == "'=HYPERLINK(\"http://evil.example\",\"点\")", "a formula must arrive as text"
    # The label-error suspicion score (review.suspicion) of each row, as the sample page shows it.
    assert all(float(row[8]) >= 0 for row in by_id.values())


def test_reviewer_cannot_revise_definitions(reviewer_client, scene):
    url = reverse("analysis:definition_revise", args=[scene.dataset.pk, scene.b.pk])
    response = reviewer_client.post(url, {"text": "新定义"})
    assert response.status_code == 403
    assert not DefinitionRevision.objects.exists()
    assert Category.objects.get(pk=scene.b.pk).revised_definition == ""


def test_admin_revises_definition_as_new_versions_with_history(admin_client, scene):
    url = reverse("analysis:definition_revise", args=[scene.dataset.pk, scene.b.pk])
    admin_client.post(url, {"text": "用户申请更换同款商品（不含退款）"})
    response = admin_client.post(url, {"text": "用户申请更换同款商品"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'id="definition"' in text and "<html" not in text  # the partial only
    assert "修订历史（2 个版本）" in text and "用户申请更换同款商品（不含退款）" in text
    assert list(DefinitionRevision.objects.filter(category=scene.b).values_list("version", "text")) == [
        (2, "用户申请更换同款商品"), (1, "用户申请更换同款商品（不含退款）")]
    assert Category.objects.get(pk=scene.b.pk).revised_definition == "用户申请更换同款商品"
    assert Category.objects.get(pk=scene.b.pk).definition == "用户申请更换商品"  # official kept
    # Saving the same text again is refused and adds no version.
    response = admin_client.post(url, {"text": "用户申请更换同款商品"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'role="alert">修订定义没有变化' in response.content.decode()
    assert DefinitionRevision.objects.count() == 2


def test_reviewer_cannot_export_or_see_exports(reviewer_client, scene):
    response = reviewer_client.post(reverse("analysis:export_create", args=[scene.dataset.pk]), {"format": "alpaca"})
    assert response.status_code == 403
    assert not Export.objects.exists()
    assert reviewer_client.get(reverse("analysis:export_list")).status_code == 403


def test_admin_exports_from_the_browser_and_downloads(admin_client, scene, settings):
    response = admin_client.post(reverse("analysis:export_create", args=[scene.dataset.pk]), {"format": "sharegpt"})
    export = Export.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("analysis:export_detail", args=[export.pk])
    assert export.created_by == scene.admin and export.row_count == 4
    detail = admin_client.get(response["Location"]).content.decode()
    assert "待修正（未导出）" in detail and "a4" in detail
    download = admin_client.get(reverse("analysis:export_download", args=[export.pk]), follow=True)
    body = b"".join(download.streaming_content)
    assert body == (settings.EXPORT_ROOT / export.path / "scenes_trainset_sharegpt.json").read_bytes()
    assert body.startswith(b"[")
    listing = admin_client.get(reverse("analysis:export_list")).content.decode()
    assert f"#{export.pk}" in listing


def test_download_refuses_paths_outside_the_export_root(admin_client, scene):
    export = Export.objects.create(kind="classification_trainset", format="alpaca", path="../../etc/passwd")
    assert admin_client.get(reverse("analysis:export_download", args=[export.pk])).status_code == 404


def test_imported_names_stay_text_in_the_overview_and_its_chart_data(reviewer_client, scene):
    scene.c.name = "</script><img src=x onerror=alert(1)>"
    scene.c.save()
    text = reviewer_client.get(reverse("analysis:overview", args=[scene.dataset.pk])).content.decode()
    assert "<img src=x" not in text
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in text  # table cell
    assert "\\u003C/script\\u003E\\u003Cimg" in text  # json_script data for the chart
