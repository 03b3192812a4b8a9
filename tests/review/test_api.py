"""The REST API: permissions (403 for an unassigned class, nothing changed), visibility of lists,
allow-listed filters, conflicts, exports, token auth and the schema/docs pages."""
import pytest
from rest_framework.test import APIClient

from pipelines.models import Export
from review.models import Assignment, Cause, Review, ReviewEdit
from tests.factories import ReasoningFactory, SampleFactory


@pytest.fixture
def api(scene):
    return APIClient()


def as_user(api, user):
    api.force_authenticate(user)
    return api


def test_anonymous_requests_are_refused(api):
    assert api.get("/api/samples/").status_code in (401, 403)
    assert api.get("/api/schema/").status_code in (401, 403)


def test_token_auth(api, scene):
    scene.reviewer.set_password("secret-pass-123")
    scene.reviewer.save()
    token = api.post("/api/token/", {"username": "reviewer1", "password": "secret-pass-123"}).json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/datasets/").status_code == 200


def test_datasets_with_counts(api, scene):
    data = as_user(api, scene.reviewer).get("/api/datasets/").json()
    assert data["results"] == [
        {"id": scene.dataset.pk, "name": "scenes", "description": "", "created_at": data["results"][0]["created_at"],
         "category_count": 3, "sample_count": 9}
    ]


def test_samples_nest_reasoning_and_review_and_say_what_the_reviewer_may_change(api, scene):
    data = as_user(api, scene.reviewer).get("/api/samples/", {"dataset": scene.dataset.pk}).json()
    assert data["count"] == 9  # a reviewer may view every class
    by_id = {s["external_id"]: s for s in data["results"]}
    a3 = by_id["a3"]
    assert [r["mode"] for r in a3["reasonings"]] == [2, 3]
    assert a3["reasonings"][1]["output"] == "<script>alert(1)</script>类别：换货"  # JSON, not HTML
    assert a3["review"]["corrected_output"] == "图片是颜色规格选项。类别：商品分类选项"
    assert a3["review"]["reviewer"] == "reviewer1"
    assert by_id["a1"]["review"] is None
    assert (by_id["a1"]["can_change"], by_id["b1"]["can_change"]) == (True, False)


def test_sample_list_query_count_is_flat(api, scene, django_assert_max_num_queries):
    client = as_user(api, scene.reviewer)
    with django_assert_max_num_queries(6) as few:
        client.get("/api/samples/")
    for i in range(20):
        sample = SampleFactory(dataset=scene.dataset, label=scene.a, external_id=f"z{i:02d}")
        ReasoningFactory(sample=sample, mode=2, predicted_category=scene.a, is_correct=True)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/api/samples/").json()["count"] == 29


def test_unknown_filters_are_ignored_not_turned_into_lookups(api, scene):
    client = as_user(api, scene.reviewer)
    probe = client.get("/api/reviews/", {"reviewer__password__startswith": "md5"})
    assert probe.status_code == 200 and probe.json()["count"] == Review.objects.count()
    probe = client.get("/api/samples/", {"user__password__startswith": "x", "review__reviewer__password": "x"})
    assert probe.json()["count"] == 9
    ordered = client.get("/api/reviews/", {"ordering": "reviewer__password"})
    assert ordered.status_code == 200 and ordered.json()["count"] == Review.objects.count()


def test_listed_filters_work(api, scene):
    client = as_user(api, scene.reviewer)
    ids = lambda r: sorted(s["external_id"] for s in r.json()["results"])  # noqa: E731
    assert ids(client.get("/api/samples/", {"category": scene.b.pk})) == ["b1", "b2", "b3", "b4"]
    assert ids(client.get("/api/samples/", {"wrong_in_mode": 2})) == ["a2", "a4", "b2", "b3", "b4"]
    assert ids(client.get("/api/samples/", {"cause": Cause.DEFINITIONS_OVERLAP})) == ["a2", "b3", "b4"]
    assert ids(client.get("/api/samples/", {"label_error": "true"})) == ["a4"]
    assert client.get("/api/reviews/", {"category": scene.b.pk}).json()["count"] == 3
    assert client.get("/api/categories/", {"dataset": scene.dataset.pk}).json()["count"] == 3


def test_reviewer_saves_a_review_of_an_assigned_class(api, scene):
    client = as_user(api, scene.reviewer)
    response = client.post("/api/reviews/", {"sample": scene.samples["a1"].pk, "cause": "none", "version": 0}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["version"] == 1 and response.json()["cause"] == "none"
    review = Review.objects.get(sample=scene.samples["a1"])
    response = client.patch(f"/api/reviews/{review.pk}/", {"note": "已确认", "version": 1}, format="json")
    assert response.status_code == 200 and response.json()["version"] == 2
    review.refresh_from_db()
    assert (review.cause, review.note) == ("none", "已确认")  # PATCH keeps the other fields


def test_reviewer_cannot_change_an_unassigned_class(api, scene):
    client = as_user(api, scene.reviewer)
    before = list(Review.objects.values_list("pk", "cause", "corrected_output", "version"))
    edits = ReviewEdit.objects.count()
    response = client.post("/api/reviews/", {"sample": scene.samples["b1"].pk, "cause": "model_weak", "version": 0},
                           format="json")
    assert response.status_code == 403
    b3_review = Review.objects.get(sample=scene.samples["b3"])
    response = client.patch(f"/api/reviews/{b3_review.pk}/", {"cause": "model_weak", "version": 1}, format="json")
    assert response.status_code == 403
    assert list(Review.objects.values_list("pk", "cause", "corrected_output", "version")) == before
    assert ReviewEdit.objects.count() == edits


def test_stale_version_is_a_conflict_and_changes_nothing(api, scene):
    client = as_user(api, scene.reviewer)
    review = Review.objects.get(sample=scene.samples["a2"])
    first = client.patch(f"/api/reviews/{review.pk}/", {"note": "第一次", "version": 1}, format="json")
    assert first.status_code == 200
    stale = client.patch(f"/api/reviews/{review.pk}/", {"note": "过期的修改", "version": 1}, format="json")
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2
    review.refresh_from_db()
    assert review.note == "第一次" and review.version == 2


def test_assignments_are_staff_write(api, scene):
    reviewer = as_user(api, scene.reviewer)
    assert reviewer.get("/api/assignments/").json()["count"] == 2
    response = reviewer.post("/api/assignments/", {"reviewer": scene.reviewer.pk, "category": scene.b.pk}, format="json")
    assert response.status_code == 403
    assert not Assignment.objects.filter(reviewer=scene.reviewer, category=scene.b).exists()

    admin = as_user(APIClient(), scene.admin)
    response = admin.post("/api/assignments/", {"reviewer": scene.reviewer.pk, "category": scene.b.pk}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["assigned_by"] == "admin"
    # The other reviewer keeps the class too.
    assert set(Assignment.objects.filter(category=scene.b).values_list("reviewer__username", flat=True)) == {
        "reviewer1", "reviewer2"}
    assert admin.delete(f"/api/assignments/{response.json()['id']}/").status_code == 204
    assert not Assignment.objects.filter(reviewer=scene.reviewer, category=scene.b).exists()


def test_exports_staff_create_others_403_and_see_only_their_own(api, scene):
    reviewer = as_user(api, scene.reviewer)
    response = reviewer.post("/api/exports/", {"dataset": scene.dataset.pk, "format": "alpaca"}, format="json")
    assert response.status_code == 403 and not Export.objects.exists()

    admin = as_user(APIClient(), scene.admin)
    response = admin.post("/api/exports/", {"dataset": scene.dataset.pk, "format": "alpaca"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["row_count"] == 4 and body["created_by"] == "admin" and body["report"]["pending"] == 4
    assert admin.get("/api/exports/").json()["count"] == 1
    assert reviewer.get("/api/exports/").json()["count"] == 0
    assert reviewer.get(f"/api/exports/{body['id']}/").status_code == 404
    assert admin.post("/api/exports/", {"dataset": scene.dataset.pk, "format": "csv"}, format="json").status_code == 400


def test_schema_and_docs_page_without_inline_script(api, scene):
    client = as_user(api, scene.reviewer)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/reviews/" in schema.json()["paths"]
    docs = client.get("/api/docs/")
    html = docs.content.decode()
    assert docs.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "<script>" not in html and "<style" not in html and "cdn" not in html.lower()
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
