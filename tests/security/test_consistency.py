"""Concurrent edits on the real database (PostgreSQL in CI): no lost update, one history row each."""
import threading

import pytest
from django.db import connection

from core.errors import ApplicationError
from review.models import Cause, Review, ReviewEdit
from review.services import review_restore, review_save
from tests.factories import AssignmentFactory, CategoryFactory, DatasetFactory, SampleFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def save(sample, user, version, note):
    return review_save(sample=sample, user=user, cause=Cause.MODEL_WEAK, corrected_output="", label_error=False,
                       suggested_label=None, note=note, version=version)


def run_at_once(functions):
    """Run callables in threads released together; return each one's result or exception."""
    barrier = threading.Barrier(len(functions))
    outcomes = [None] * len(functions)

    def worker(index, function):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = function()
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.fixture
def shared_sample():
    dataset = DatasetFactory(name="concurrency")
    category = CategoryFactory(dataset=dataset, name="换货")
    users = [UserFactory(username=f"editor{n}") for n in range(4)]
    for user in users:
        AssignmentFactory(reviewer=user, category=category)
    return SampleFactory(label=category), users


def test_first_saves_at_the_same_moment_one_wins(shared_sample):
    sample, users = shared_sample
    outcomes = run_at_once([lambda u=u: save(sample, u, 0, f"by {u.username}") for u in users])
    wins = [o for o in outcomes if isinstance(o, Review)]
    conflicts = [o for o in outcomes if isinstance(o, ApplicationError) and o.code == "conflict"]
    assert len(wins) == 1 and len(conflicts) == len(users) - 1, outcomes
    review = Review.objects.get(sample=sample)
    assert review.version == 1 and review.note == wins[0].note
    assert ReviewEdit.objects.filter(review=review).count() == 1


def test_edits_of_the_same_version_never_overwrite_each_other(shared_sample):
    sample, users = shared_sample
    save(sample, users[0], 0, "first")
    outcomes = run_at_once([lambda u=u: save(sample, u, 1, f"second by {u.username}") for u in users])
    wins = [o for o in outcomes if isinstance(o, Review)]
    assert len(wins) == 1, outcomes
    assert all(isinstance(o, ApplicationError) and o.code == "conflict" for o in outcomes if o not in wins)
    review = Review.objects.get(sample=sample)
    assert (review.version, review.note) == (2, wins[0].note)
    assert list(ReviewEdit.objects.filter(review=review).order_by("version").values_list("version", flat=True)) == [1, 2]


def test_staff_can_restore_an_earlier_version(shared_sample):
    sample, users = shared_sample
    save(sample, users[0], 0, "first")
    save(sample, users[1], 1, "second")
    first_edit = ReviewEdit.objects.get(review__sample=sample, version=1)
    restored = review_restore(edit=first_edit, user=UserFactory(username="boss", is_staff=True))
    assert (restored.version, restored.note) == (3, "first")


def test_feedback_decisions_of_the_same_version_never_overwrite_each_other():
    from pipelines.datasets.services import feedback_sample_decide
    from pipelines.models import FeedbackSample, ReviewDecision

    item = FeedbackSample.objects.create(feedback_id="fb-1", instruction="问", output="答", rating=2)
    users = [UserFactory(username=f"fb-editor{n}", is_staff=True) for n in range(3)]
    outcomes = run_at_once([
        lambda u=u: feedback_sample_decide(sample=item, user=u, decision=ReviewDecision.EDITED, version=item.version,
                                           edited_output=f"改写 by {u.username}")
        for u in users
    ])
    wins = [o for o in outcomes if isinstance(o, FeedbackSample)]
    assert len(wins) == 1, outcomes
    item.refresh_from_db()
    assert item.version == wins[0].version and item.edited_output == wins[0].edited_output
