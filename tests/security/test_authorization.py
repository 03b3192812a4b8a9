"""Authorization across every URL the project has (enumerated from the URL resolver).

A reviewer may view everything but change only the samples of their assigned categories; staff
may do everything. Objects are looked up inside the URL's parent (another dataset's or job's id
gives 404); staff-only actions give non-staff 403; a POST without a CSRF token is refused; filter
parameters cannot probe password hashes.
"""
import re
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from pipelines.models import (
    Export,
    FeedbackSample,
    GeneratedExample,
    Job,
    JobItem,
    JobKind,
    JobStatus,
    LogRecord,
    PreferencePair,
    PromptTemplate,
    SourceItem,
)
from review.models import (
    Assignment,
    Category,
    Cause,
    CorrectionDraft,
    DefinitionRevision,
    Mode,
    Reasoning,
    Review,
    ReviewEdit,
    Sample,
)
from tests.factories import (
    AssignmentFactory,
    CategoryFactory,
    DatasetFactory,
    SampleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- the URL map


@dataclass(frozen=True)
class Route:
    pattern: str  # e.g. "generation/runs/<int:job_id>/failed/<int:example_id>/decide/"
    name: str  # e.g. "generation:decide"
    params: tuple[str, ...]

    @property
    def namespace(self) -> str:
        return self.name.split(":")[0] if ":" in self.name else ""


def _walk(patterns, prefix="", namespace=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else (entry.namespace or namespace)
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else (entry.name or "")
            yield prefix + str(entry.pattern), name


def all_routes() -> list[Route]:
    """Every URL of the project except the Django admin's own (checked separately) and DRF's
    format-suffix duplicates."""
    routes = {}
    for pattern, name in _walk(get_resolver().url_patterns):
        if pattern.startswith("django-admin/") or "(?P<format>" in pattern or "<drf_format_suffix" in pattern:
            continue
        params = tuple(a or b for a, b in re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", pattern))
        routes[pattern] = Route(pattern, name, params)
    return list(routes.values())


def concrete(route: Route, values: dict[str, str]) -> str:
    """The route's pattern with its parameters replaced by `values`."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), route.pattern)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), path)
    return "/" + path.replace("^", "").replace("$", "")


PUBLIC = {"login", "healthz", "favicon", "api:schema", "api:token"}  # api:token checks a password, rate-limited


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    dataset: object
    other_dataset: object
    assigned: Category
    unassigned: Category
    other_category: Category
    sample: Sample  # in the unassigned category
    own_sample: Sample
    other_sample: Sample
    edit: ReviewEdit
    jobs: dict
    other_jobs: dict
    example: GeneratedExample
    other_example: GeneratedExample
    pair: PreferencePair
    other_pair: PreferencePair
    exports: dict
    other_exports: dict
    feedback: FeedbackSample
    reviewer: object
    staff: object


def _job(kind, **params):
    job = Job.objects.create(kind=kind, params=params, status=JobStatus.DONE, items_total=1, items_done=1)
    JobItem.objects.create(job=job, key="1", status="done")
    return job


@pytest.fixture
def world(reviewer, media_root):
    from PIL import Image

    staff = UserFactory(username="boss", is_staff=True, is_superuser=True)
    dataset = DatasetFactory(name="scenes")
    other_dataset = DatasetFactory(name="other-scenes")
    assigned = CategoryFactory(dataset=dataset, name="商品分类选项")
    unassigned = CategoryFactory(dataset=dataset, name="换货")
    other_category = CategoryFactory(dataset=other_dataset, name="退款")
    AssignmentFactory(reviewer=reviewer, category=assigned)
    Image.new("RGB", (4, 4)).save(media_root / "a.png")
    sample = SampleFactory(label=unassigned, external_id="u-1", image="a.png")
    CorrectionDraft.objects.create(sample=sample, text="草稿\n类别：换货", mode3_version=1)
    own_sample = SampleFactory(label=assigned, external_id="a-1", image="a.png")
    other_sample = SampleFactory(label=other_category, external_id="o-1", image="a.png")
    for s in (sample, own_sample, other_sample):
        for mode in Mode.values:
            Reasoning.objects.create(sample=s, mode=mode, output=f"图片显示{s.label.name}。", predicted_name=s.label.name,
                                     predicted_category=s.label, is_correct=True, length=8)
    review = Review.objects.create(sample=sample, reviewer=staff, cause=Cause.MODEL_WEAK, version=1)
    edit = ReviewEdit.objects.create(review=review, editor=staff, version=1, before={}, after={"cause": "model_weak"})

    jobs, other_jobs = {}, {}
    for bucket in (jobs, other_jobs):
        bucket["classification"] = _job(JobKind.CLASSIFICATION, dataset_id=dataset.pk, mode=2)
        bucket["generation"] = _job(JobKind.GENERATION)
        bucket["dpo"] = _job(JobKind.DPO, strategy={"name": "truncate"}, source={"name": "feedback"})
        bucket["log_extraction"] = _job(JobKind.LOG_EXTRACTION)
    source = SourceItem.objects.create(collection="c", external_id="s1", image="a.png", wiki_title="长城")
    source2 = SourceItem.objects.create(collection="c", external_id="s2", image="a.png", wiki_title="故宫")
    example = GeneratedExample.objects.create(job=jobs["generation"], source_item=source, example_id="e1",
                                              question="问？", response="<look>a</look>")
    other_example = GeneratedExample.objects.create(job=other_jobs["generation"], source_item=source2,
                                                    example_id="e2", question="问？", response="<look>b</look>")
    pair = PreferencePair.objects.create(job=jobs["dpo"], key="k1", source="s", prompt="p", chosen="c", rejected="r")
    other_pair = PreferencePair.objects.create(job=other_jobs["dpo"], key="k2", source="s", prompt="p", chosen="c",
                                               rejected="r")
    LogRecord.objects.create(job=jobs["log_extraction"], source_file="a.log", line_no=1, prompt="p", response="r",
                             content_hash="h")
    feedback = FeedbackSample.objects.create(feedback_id="f1", instruction="i", output="o", rating=2)

    def export(kind, fmt, params, name):
        from django.conf import settings

        path = settings.EXPORT_ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"id": 1}\n')
        return Export.objects.create(kind=kind, format=fmt, params=params, created_by=staff, path=name, row_count=1)

    exports = {
        "trainset": export("classification_trainset", "jsonl", {"dataset_id": dataset.pk}, "t1.jsonl"),
        "generation": export("generation", "jsonl", {"job": jobs["generation"].pk}, "g1/generated.jsonl"),
        "dpo": export("dpo", "jsonl", {"job_id": jobs["dpo"].pk}, "d1/pairs.jsonl"),
        "builder": export("builder", "jsonl", {}, "b1/train.jsonl"),
    }
    other_exports = {
        "generation": export("generation", "jsonl", {"job": other_jobs["generation"].pk}, "g2/generated.jsonl"),
        "dpo": export("dpo", "jsonl", {"job_id": other_jobs["dpo"].pk}, "d2/pairs.jsonl"),
    }
    return World(dataset, other_dataset, assigned, unassigned, other_category, sample, own_sample, other_sample,
                 edit, jobs, other_jobs, example, other_example, pair, other_pair, exports, other_exports, feedback,
                 reviewer, staff)


def values_for(route: Route, w: World) -> dict[str, str]:
    """Parameter values pointing at objects the reviewer may view but not change."""
    ns = route.namespace
    job_kind = {"generation": "generation", "dpo": "dpo", "feedback": "log_extraction"}.get(ns, "classification")
    export_kind = {"generation": "generation", "dpo": "dpo", "feedback": "builder"}.get(ns, "trainset")
    values = {
        "dataset_id": w.dataset.pk,
        "category_id": w.unassigned.pk,
        "sample_id": w.feedback.pk if ns == "feedback" else w.sample.pk,
        "edit_id": w.edit.pk,
        "job_id": w.jobs[job_kind].pk,
        "example_id": w.example.pk,
        "pair_id": w.pair.pk,
        "export_id": w.exports[export_kind].pk,
        "kind": "classification" if route.name == "jobs:start" else PromptTemplate.Kind.CLASSIFICATION_MODE2,
        "path": "a.png",
        "name": "generated_examples.jsonl" if route.name == "generation:team_file" else "train.jsonl",
        "which": "pairs",
        "draft_id": CorrectionDraft.objects.get(sample=w.sample).pk,
        "pk": {
            "api:dataset-detail": w.dataset.pk, "api:category-detail": w.unassigned.pk,
            "api:sample-detail": w.sample.pk, "api:review-detail": Review.objects.get(sample=w.sample).pk,
            "api:assignment-detail": Assignment.objects.get(reviewer=w.reviewer).pk,
            "api:export-detail": w.exports["trainset"].pk,
        }.get(route.name, 1),
    }
    return {p: values[p] for p in route.params}


def fingerprint() -> dict:
    """Everything a change through the UI or API could touch, in comparable form."""
    def rows(model, *fields):
        return sorted(model.objects.values_list("pk", *fields))

    return {
        "reviews": rows(Review, "cause", "corrected_output", "label_error", "suggested_label", "note", "version"),
        "edits": rows(ReviewEdit, "version"),
        "samples": rows(Sample, "label", "image", "external_id"),
        "categories": rows(Category, "name", "definition", "revised_definition"),
        "revisions": rows(DefinitionRevision, "version"),
        "reasonings": rows(Reasoning, "output", "is_correct"),
        "assignments": rows(Assignment, "reviewer", "category"),
        "jobs": rows(Job, "status", "kind"),
        "exports": rows(Export),
        "prompts": rows(PromptTemplate, "version"),
        "drafts": rows(CorrectionDraft, "status", "review"),
        "users": rows(get_user_model(), "is_staff", "is_active"),
    }


# A plausible form for every kind of POST: the fields the product's forms use, pointing at the
# unassigned category's objects. Extra fields are ignored by views that don't know them.
def post_data(w: World) -> dict:
    return {
        "cause": Cause.LABEL_WRONG, "corrected_output": "篡改", "correction_override": "on", "label_error": "on",
        "version": "1", "action": "save",
        "suggested_label": str(w.assigned.pk), "note": "x", "definition": "篡改的定义", "text": "篡改的定义",
        "revised_definition": "篡改的定义", "dataset": w.dataset.name, "dataset_id": str(w.dataset.pk),
        "mode": "2", "categories": str(w.unassigned.pk), "category": str(w.unassigned.pk),
        f"assign-{w.unassigned.pk}": str(w.reviewer.pk), "reviewer": str(w.reviewer.pk),
        "format": "jsonl", "fmt": "jsonl", "decision": "accepted", "sample": str(w.sample.pk),
    }


# --------------------------------------------------------------------------- tests


def test_the_sweep_sees_the_whole_product():
    names = {route.name for route in all_routes()}
    for expected in ["review:save", "review:sample", "jobs:start", "analysis:export_create", "api:review-detail",
                     "generation:decide", "dpo:pair_review", "feedback:decide"]:
        assert expected in names


def test_every_page_and_endpoint_needs_a_login(world):
    client = Client(raise_request_exception=False)
    leaks = []
    for route in all_routes():
        if route.name in PUBLIC or route.name == "logout":
            continue
        url = concrete(route, values_for(route, world))
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            login_redirect = response.status_code == 302 and "/login/" in response.get("Location", "")
            if not (login_redirect or response.status_code in (401, 403, 405)):
                leaks.append(f"{method.upper()} {url} ({route.name}) → {response.status_code}")
    assert not leaks, "reachable without logging in:\n" + "\n".join(leaks)


def test_a_reviewer_cannot_change_an_unassigned_category_through_any_url(world):
    """Every POST/PUT/PATCH/DELETE on every URL, aimed at the unassigned category's objects."""
    client = Client(raise_request_exception=False)
    client.force_login(world.reviewer)
    before = fingerprint()
    changed = []
    for route in all_routes():
        if route.name in PUBLIC | {"logout"}:
            continue
        url = concrete(route, values_for(route, world))
        for method in ("post", "put", "patch", "delete"):
            data = post_data(world)
            if method == "post":
                response = client.post(url, data, HTTP_HX_REQUEST="true")
            else:
                response = getattr(client, method)(url, data=data, content_type="application/json")
            after = fingerprint()
            if response.status_code >= 500:
                changed.append(f"{method.upper()} {url} ({route.name}) → {response.status_code} (server error)")
            if after != before:
                diff = [key for key in before if before[key] != after[key]]
                changed.append(f"{method.upper()} {url} ({route.name}) → {response.status_code}, changed {diff}")
                before = after
    # The reviewer's own rows (feedback/generation/DPO decisions) are not category-scoped; review
    # data, definitions, assignments, jobs, exports and prompts must be untouched.
    assert not changed, "a reviewer changed what they may not:\n" + "\n".join(changed)


def test_the_api_refuses_reviews_of_unassigned_samples(world, client):
    client.force_login(world.reviewer)
    review = Review.objects.get(sample=world.sample)
    before = fingerprint()
    responses = [
        client.post("/api/reviews/", {"sample": world.sample.pk, "cause": Cause.LABEL_WRONG, "version": 1},
                    content_type="application/json"),
        client.patch(f"/api/reviews/{review.pk}/", {"cause": Cause.NONE, "version": 1}, content_type="application/json"),
        client.put(f"/api/reviews/{review.pk}/", {"sample": world.sample.pk, "cause": Cause.NONE, "version": 1},
                   content_type="application/json"),
    ]
    assert all(r.status_code in (403, 404, 405) for r in responses), [(r.status_code, r.content[:200]) for r in responses]
    assert responses[0].status_code == 403 and responses[1].status_code == 403
    assert fingerprint() == before


STAFF_ONLY = [
    # (url name, method): job start and control, monitor, exports, admin-like management.
    ("jobs:create", "get"), ("jobs:start", "post"), ("jobs:rerun_wrong", "post"), ("jobs:cancel", "post"),
    ("jobs:resume", "post"), ("jobs:retry_failed", "post"), ("jobs:prompt_edit", "post"),
    ("jobs:monitor", "get"), ("jobs:monitor_panel", "get"),
    ("generation:start", "post"), ("generation:rerun", "post"), ("generation:export", "post"),
    ("generation:import_sources", "post"),
    ("dpo:start", "post"), ("dpo:export", "post"),
    ("feedback:import", "post"), ("feedback:logs_import", "post"), ("feedback:builder_write", "post"),
    ("analysis:export_create", "post"),
    ("review:assignments", "post"), ("review:restore", "post"),
    ("api:assignment-list", "post"), ("api:export-list", "post"),
]


@pytest.mark.parametrize("name, method", STAFF_ONLY, ids=[f"{m.upper()} {n}" for n, m in STAFF_ONLY])
def test_staff_only_endpoints_refuse_non_staff(world, name, method):
    client = Client(raise_request_exception=False)
    routes = {route.name: route for route in all_routes()}
    assert name in routes, f"{name} no longer exists; update the list"
    route = routes[name]
    client.force_login(world.reviewer)
    before = fingerprint()
    url = concrete(route, values_for(route, world))
    response = getattr(client, method)(url, post_data(world)) if method == "post" else client.get(url)
    assert response.status_code == 403, f"{method.upper()} {url} → {response.status_code}"
    assert fingerprint() == before


def test_django_admin_refuses_non_staff(world, client):
    client.force_login(world.reviewer)
    for url in ["/django-admin/", "/django-admin/auth/user/", "/django-admin/review/review/"]:
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"], url


CROSS_PARENT = [
    # (url name, values replaced by another parent's child)
    ("generation:decide", {"example_id": "other_example"}),
    ("generation:image", {"example_id": "other_example"}),
    ("dpo:pair", {"pair_id": "other_pair"}),
    ("dpo:pair_review", {"pair_id": "other_pair"}),
    ("analysis:class", {"category_id": "other_category"}),
    ("analysis:class_markdown", {"category_id": "other_category"}),
    ("analysis:definition_revise", {"category_id": "other_category"}),
]


@pytest.mark.parametrize("name, swap", CROSS_PARENT, ids=[n for n, _ in CROSS_PARENT])
def test_an_id_from_another_parent_gives_404(world, name, swap):
    client = Client(raise_request_exception=False)
    routes = {route.name: route for route in all_routes()}
    assert name in routes, f"{name} no longer exists; update the list"
    route = routes[name]
    client.force_login(world.staff)  # even staff: the object is not under this parent
    values = values_for(route, world)
    lookup = {"other_example": world.other_example.pk, "other_pair": world.other_pair.pk,
              "other_category": world.other_category.pk,
              "other_export_generation": world.other_exports["generation"].pk}
    for param, replacement in swap.items():
        values[param] = lookup[replacement]
    url = concrete(route, values)
    before = fingerprint()
    for method in ("get", "post"):
        response = getattr(client, method)(url, post_data(world), HTTP_HX_REQUEST="true") if method == "post" \
            else client.get(url, HTTP_HX_REQUEST="true")
        assert response.status_code in (404, 405), f"{method.upper()} {url} → {response.status_code}"
    assert fingerprint() == before


def test_a_suggested_label_from_another_dataset_is_refused(world, client):
    AssignmentFactory(reviewer=world.reviewer, category=world.unassigned)
    client.force_login(world.reviewer)
    before = fingerprint()
    response = client.post(f"/samples/{world.sample.pk}/review/", {
        "cause": Cause.LABEL_WRONG, "label_error": "on", "suggested_label": world.other_category.pk, "version": 1,
    }, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert fingerprint() == before


def test_every_post_without_a_csrf_token_is_refused(world):
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(world.staff)
    accepted = []
    for route in all_routes():
        if route.name in ("healthz", "api:schema"):
            continue
        url = concrete(route, values_for(route, world))
        response = client.post(url, post_data(world), HTTP_HX_REQUEST="true")
        if response.status_code != 403:
            accepted.append(f"POST {url} ({route.name}) → {response.status_code}")
    assert not accepted, "POST accepted without a CSRF token:\n" + "\n".join(accepted)


PROBES = ["user__password__startswith", "reviewer__password__startswith", "created_by__password__startswith",
          "decided_by__password__startswith", "editor__password__startswith", "password__startswith",
          "reviewer__password__regex", "assignments__reviewer__password__startswith"]


def _normalised(response, probe_value: str) -> bytes:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    # A page may echo its own query string (links, docs); that is not an oracle.
    for form in {probe_value, probe_value.replace("$", "%24"), probe_value.replace("$", "%2524")}:
        body = body.replace(form.encode(), b"PROBE")
    return re.sub(rb'[A-Za-z0-9]{32,}', b"TOKEN", body)


def test_filter_parameters_cannot_probe_password_hashes(world):
    client = Client(raise_request_exception=False)
    """The MD5 test hasher's hashes start with "md5$": a working probe would change the answer."""
    client.force_login(world.reviewer)
    oracles = []
    for route in all_routes():
        if route.name in PUBLIC | {"logout"} or route.name.startswith("review:image"):
            continue
        url = concrete(route, values_for(route, world))
        for probe in PROBES:
            hit = client.get(url, {probe: "md5$"})
            miss = client.get(url, {probe: "no-such-prefix"})
            if hit.status_code == 400 and miss.status_code == 400:
                continue
            if hit.status_code != miss.status_code or _normalised(hit, "md5$") != _normalised(miss, "no-such-prefix"):
                oracles.append(f"GET {url}?{probe}= ({route.name}): {hit.status_code} vs {miss.status_code}")
        for ordering in ("reviewer__password", "created_by__password", "user__password"):
            response = client.get(url, {"ordering": ordering, "o": ordering, "sort": ordering})
            if response.status_code >= 500:
                oracles.append(f"GET {url}?ordering={ordering} → {response.status_code}")
    assert not oracles, "filters that see password hashes:\n" + "\n".join(oracles)


def test_the_sweeps_form_data_does_change_what_the_reviewer_may_change(world, client):
    """Control: the data the sweep posts is a valid review, so its refusals above are real."""
    client.force_login(world.reviewer)
    response = client.post(f"/samples/{world.own_sample.pk}/review/", {**post_data(world), "version": "0",
                                                                      "suggested_label": str(world.unassigned.pk)},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    review = Review.objects.get(sample=world.own_sample)
    assert (review.cause, review.label_error, review.reviewer) == (Cause.LABEL_WRONG, True, world.reviewer)


def test_export_lists_and_downloads_show_a_reviewer_only_their_own(world, client):
    """Exports are staff's: a reviewer sees none of them in lists, details or downloads."""
    client.force_login(world.reviewer)
    staff_export = world.exports["trainset"]
    api = client.get("/api/exports/")
    assert api.status_code == 200
    listed = api.json()["results"] if isinstance(api.json(), dict) else api.json()
    assert staff_export.pk not in [row["id"] for row in listed]
    page = client.get("/analysis/exports/")
    assert page.status_code in (200, 403)
    assert f"/analysis/exports/{staff_export.pk}/" not in page.content.decode()
    for url in [f"/api/exports/{staff_export.pk}/", f"/analysis/exports/{staff_export.pk}/",
                f"/analysis/exports/{staff_export.pk}/download/"]:
        assert client.get(url).status_code in (403, 404), url
