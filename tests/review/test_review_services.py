"""review_save / review_restore / assignment_set: the rules every writer relies on."""
import threading

import pytest
from django.db import connection, connections

from core.errors import ApplicationError
from review.models import Assignment, Cause, Review, ReviewEdit
from review.services import assignment_set, review_restore, review_save
from tests.factories import CategoryFactory, DatasetFactory, UserFactory


def save(sample, user, version=0, **overrides):
    values = dict(cause=Cause.NONE, corrected_output="", label_error=False, suggested_label=None, note="")
    values.update(overrides)
    return review_save(sample=sample, user=user, version=version, **values)


def test_first_save_creates_review_version_1_and_an_edit(sample, reviewer):
    review = save(sample, reviewer, cause=Cause.MODEL_WEAK, note="模型没看到规格")
    assert (review.version, review.cause, review.reviewer) == (1, Cause.MODEL_WEAK, reviewer)
    edit = ReviewEdit.objects.get(review=review)
    assert edit.version == 1 and edit.editor == reviewer and edit.before == {}
    assert edit.after["cause"] == Cause.MODEL_WEAK and edit.after["note"] == "模型没看到规格"


def test_second_save_records_before_and_after(sample, reviewer):
    save(sample, reviewer, cause=Cause.NONE)
    review = save(sample, reviewer, version=1, cause=Cause.DEFINITIONS_OVERLAP, corrected_output="新的输出\n类别：商品分类选项")
    assert review.version == 2
    edit = review.edits.get(version=2)
    assert edit.before["cause"] == Cause.NONE and edit.after["cause"] == Cause.DEFINITIONS_OVERLAP
    assert edit.after["corrected_output"] == "新的输出\n类别：商品分类选项"


def test_stale_version_is_a_conflict_naming_who_and_changes_nothing(sample, reviewer, admin_user):
    save(sample, reviewer, cause=Cause.NONE)
    save(sample, admin_user, version=1, cause=Cause.MODEL_WEAK)
    with pytest.raises(ApplicationError) as caught:
        save(sample, reviewer, version=1, cause=Cause.LABEL_WRONG, suggestion_uncertain=True)
    assert caught.value.code == "conflict"
    assert "admin" in caught.value.message and "版本 2" in caught.value.message
    assert caught.value.extra["current_version"] == 2
    review = Review.objects.get(sample=sample)
    assert (review.cause, review.version) == (Cause.MODEL_WEAK, 2)
    assert review.edits.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_people_creating_the_first_review_conflict(sample, reviewer, admin_user):
    """Both opened the sample before anyone saved (version 0) and save at the same moment.

    The admin's save runs, in another connection, at the moment the reviewer's save inserts its new
    review. On PostgreSQL the reviewer's save has read "no review yet" by then, so its insert hits the
    unique constraint (the race branch): it must be a conflict naming the admin, not an error page.
    SQLite takes the write lock when a transaction begins, so there the admin's save waits for the
    reviewer's and reads its review: the admin gets the conflict. Either way one save wins whole and
    the other is refused, naming the winner, with nothing of its own written."""
    outcome: dict = {}

    def admin_saves():
        try:
            outcome["admin"] = save(sample, admin_user, cause=Cause.MODEL_WEAK, note="管理员")
        except ApplicationError as exc:
            outcome["admin"] = exc
        finally:
            connections.close_all()

    competitor = threading.Thread(target=admin_saves)
    inserts: list[str] = []

    def admin_saves_between_read_and_insert(execute, sql, params, many, context):
        if not inserts and sql.lstrip().upper().startswith('INSERT INTO "REVIEW_REVIEW"'):
            inserts.append(sql)
            competitor.start()
            if connection.vendor != "sqlite":  # SQLite: the admin waits for our write lock
                competitor.join(timeout=30)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(admin_saves_between_read_and_insert):
        try:
            outcome["reviewer"] = save(sample, reviewer, cause=Cause.DEFINITIONS_OVERLAP, note="审核员")
        except ApplicationError as exc:
            outcome["reviewer"] = exc
    competitor.join(timeout=30)
    assert inserts and not competitor.is_alive()

    loser, winner = ("admin", "reviewer") if connection.vendor == "sqlite" else ("reviewer", "admin")
    refused, saved = outcome[loser], outcome[winner]
    assert isinstance(refused, ApplicationError) and refused.code == "conflict", refused
    assert (reviewer if winner == "reviewer" else admin_user).get_username() in refused.message
    assert refused.extra["current_version"] == 1
    review = Review.objects.get(sample=sample)
    assert (review.pk, review.version, review.note) == (saved.pk, 1, saved.note)
    assert review.edits.count() == 1


def test_unassigned_reviewer_is_forbidden_and_nothing_is_written(other_sample, reviewer):
    with pytest.raises(ApplicationError) as caught:
        save(other_sample, reviewer)
    assert caught.value.code == "forbidden"
    assert not Review.objects.exists() and not ReviewEdit.objects.exists()


def test_staff_may_change_any_category(other_sample, admin_user):
    assert save(other_sample, admin_user).version == 1


def test_output_equal_to_mode3_is_stored_as_keep(sample, reviewer):
    mode3 = sample.reasonings.get(mode=3).output
    assert save(sample, reviewer, corrected_output=f"  {mode3}\n").corrected_output == ""


def test_suggested_label_kept_only_with_flag_and_must_be_another_class_of_the_dataset(sample, reviewer, unassigned_category):
    review = save(sample, reviewer, label_error=False, suggested_label=unassigned_category)
    assert review.suggested_label is None
    review = save(sample, reviewer, version=1, cause=Cause.LABEL_WRONG, label_error=True, suggested_label=unassigned_category)
    assert review.suggested_label == unassigned_category
    foreign = CategoryFactory(dataset=DatasetFactory(name="other"))
    with pytest.raises(ApplicationError):
        save(sample, reviewer, version=2, label_error=True, suggested_label=foreign)
    with pytest.raises(ApplicationError):
        save(sample, reviewer, version=2, label_error=True, suggested_label=sample.label)


def test_cause_label_wrong_is_a_label_error_even_without_the_flag(sample, reviewer, unassigned_category):
    # Otherwise the sample would be missing from trainset_error.md although its label is wrong.
    review = save(sample, reviewer, cause=Cause.LABEL_WRONG, label_error=False, suggested_label=unassigned_category)
    assert review.label_error is True and review.suggested_label == unassigned_category
    review = save(sample, reviewer, version=1, cause=Cause.MODEL_WEAK, label_error=False)
    assert review.label_error is False


def test_restoring_a_label_wrong_version_keeps_it_a_label_error(sample, reviewer, admin_user):
    review = save(sample, reviewer, cause=Cause.LABEL_WRONG, label_error=True, suggestion_uncertain=True)
    edit = review.edits.get(version=1)
    ReviewEdit.objects.filter(pk=edit.pk).update(after={**edit.after, "label_error": False})  # an older snapshot
    save(sample, reviewer, version=1, cause=Cause.MODEL_WEAK)
    restored = review_restore(edit=ReviewEdit.objects.get(pk=edit.pk), user=admin_user)
    assert restored.cause == Cause.LABEL_WRONG and restored.label_error is True


def test_migration_flags_earlier_label_wrong_reviews(sample, reviewer):
    import importlib

    from django.apps import apps

    review = save(sample, reviewer, cause=Cause.LABEL_WRONG, suggestion_uncertain=True)
    Review.objects.filter(pk=review.pk).update(label_error=False)  # as saved before the rule
    migration = importlib.import_module("review.migrations.0002_label_wrong_is_a_label_error")
    migration.flag_label_wrong_reviews(apps, None)
    assert Review.objects.get(pk=review.pk).label_error is True


def test_unknown_cause_is_invalid(sample, reviewer):
    with pytest.raises(ApplicationError) as caught:
        save(sample, reviewer, cause="bogus")
    assert caught.value.code == "invalid"


def test_saving_identical_values_adds_no_version(sample, reviewer):
    save(sample, reviewer, note="x")
    review = save(sample, reviewer, version=1, note="x")
    assert review.version == 1 and review.edits.count() == 1


def test_restore_brings_back_an_earlier_version_as_a_new_edit(sample, reviewer, admin_user):
    save(sample, reviewer, cause=Cause.MODEL_WEAK, note="第一次")
    save(sample, reviewer, version=1, cause=Cause.LABEL_WRONG, note="第二次", suggestion_uncertain=True)
    first = ReviewEdit.objects.get(version=1)
    review = review_restore(edit=first, user=admin_user)
    assert (review.version, review.cause, review.note) == (3, Cause.MODEL_WEAK, "第一次")
    latest = review.edits.get(version=3)
    assert latest.restored_from == first and latest.before["note"] == "第二次"


def test_only_staff_may_restore(sample, reviewer):
    save(sample, reviewer, cause=Cause.MODEL_WEAK)
    save(sample, reviewer, version=1, cause=Cause.NONE)
    with pytest.raises(ApplicationError) as caught:
        review_restore(edit=ReviewEdit.objects.get(version=1), user=reviewer)
    assert caught.value.code == "forbidden"
    assert Review.objects.get(sample=sample).version == 2


def test_assignment_set_replaces_the_reviewers_of_a_category(assigned_category, reviewer, other_reviewer, admin_user):
    third = UserFactory(username="reviewer3")
    assignment_set(category=assigned_category, reviewers=[other_reviewer, third], assigned_by=admin_user)
    assert set(Assignment.objects.filter(category=assigned_category).values_list("reviewer__username", flat=True)) == {
        "reviewer2", "reviewer3"}
    with pytest.raises(ApplicationError):
        assignment_set(category=assigned_category, reviewers=[reviewer], assigned_by=reviewer)


def test_assign_command_adds_categories_by_name(assigned_category, unassigned_category, reviewer, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    call_command("assign", "reviewer1", "换货", "商品分类选项", "--dataset", "scenes")
    assert set(reviewer.assignments.values_list("category__name", flat=True)) == {"换货", "商品分类选项"}
    assert "新分配 1 个类别" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("assign", "reviewer1", "不存在的类", "--dataset", "scenes")


def test_a_repeated_submit_of_the_saved_values_is_not_a_conflict(sample, reviewer):
    save(sample, reviewer, cause=Cause.MODEL_WEAK, note="同一次提交")
    review = save(sample, reviewer, version=0, cause=Cause.MODEL_WEAK, note="同一次提交")
    assert review.version == 1 and review.edits.count() == 1
