"""The assignments page says every class needs a reviewer: saving a matrix that leaves a class with
nobody warns first, names the classes, and saves only when the admin confirms."""
import pytest
from django.urls import reverse

from review.models import Assignment

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(client, admin_user, assigned_category, unassigned_category):
    client.force_login(admin_user)
    return client, reverse("review:assignments", args=[assigned_category.dataset_id])


def pairs(dataset_id):
    return set(Assignment.objects.filter(category__dataset_id=dataset_id).values_list("category__name", "reviewer__username"))


def test_a_class_left_with_nobody_is_not_saved_without_confirmation(page, reviewer, assigned_category, unassigned_category):
    client, url = page
    before = pairs(assigned_category.dataset_id)
    response = client.post(url, {f"assign-{assigned_category.pk}": [reviewer.pk]})  # 换货 left with nobody
    assert response.status_code == 200
    html = response.content.decode()
    assert "没有人负责" in html and unassigned_category.name in html
    assert 'name="confirm_unassigned"' in html
    assert pairs(assigned_category.dataset_id) == before, "saved without the admin's confirmation"
    # The page shows what the admin submitted (to confirm or change), not the stored matrix.
    assert f'name="assign-{assigned_category.pk}" value="{reviewer.pk}"' in html
    assert html.count(" checked") == 1


def test_confirming_saves_and_says_which_classes_have_nobody(page, reviewer, assigned_category, unassigned_category):
    client, url = page
    response = client.post(url, {f"assign-{assigned_category.pk}": [reviewer.pk], "confirm_unassigned": "1"},
                           follow=True)
    assert response.status_code == 200
    assert pairs(assigned_category.dataset_id) == {(assigned_category.name, reviewer.username)}
    html = response.content.decode()
    assert "已保存分配" in html and unassigned_category.name in html and "无人负责" in html


def test_a_matrix_covering_every_class_saves_at_once(page, reviewer, other_reviewer, assigned_category,
                                                     unassigned_category):
    client, url = page
    response = client.post(url, {f"assign-{assigned_category.pk}": [reviewer.pk],
                                 f"assign-{unassigned_category.pk}": [other_reviewer.pk]})
    assert response.status_code == 302
    assert pairs(assigned_category.dataset_id) == {(assigned_category.name, reviewer.username),
                                                   (unassigned_category.name, other_reviewer.username)}
