"""Login: rate limiting, no user enumeration, session expiry, password rules."""
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory
from tests.security.hashers import CountingMD5PasswordHasher

PASSWORD = "pw-for-tests-1"
pytestmark = pytest.mark.django_db


def login(client, username, password, ip="10.0.0.1", url=None, **extra):
    return client.post(url or reverse("login"), {"username": username, "password": password},
                       REMOTE_ADDR=ip, **extra)


def fail_until_limit(client, username, ip="10.0.0.1"):
    for _ in range(settings.LOGIN_FAILURES_PER_USER_IP):
        response = login(client, username, "wrong-password", ip=ip)
        assert response.status_code == 200
        assert "用户名或密码不正确" in response.content.decode()


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# --------------------------------------------------------------------------- rate limiting


def test_correct_password_logs_in(client):
    UserFactory(username="alice")
    response = login(client, "alice", PASSWORD)
    assert response.status_code == 302
    assert is_logged_in(client)


def test_too_many_failures_lock_the_username_from_that_address(client):
    UserFactory(username="alice")
    fail_until_limit(client, "alice")
    response = login(client, "alice", PASSWORD)  # even the right password is refused now
    assert response.status_code == 429
    assert "登录失败次数过多" in response.content.decode()
    assert not is_logged_in(client)


def test_lock_is_per_username_and_address(client):
    UserFactory(username="alice")
    UserFactory(username="bob")
    fail_until_limit(client, "alice", ip="10.0.0.1")
    assert login(Client(), "alice", PASSWORD, ip="10.0.0.2").status_code == 302  # alice elsewhere
    assert login(Client(), "bob", PASSWORD, ip="10.0.0.1").status_code == 302  # bob on that address


def test_usernames_are_counted_case_insensitively(client):
    UserFactory(username="alice")
    for variant in ["alice", "Alice", "ALICE", " alice", "aLiCe"]:
        login(client, variant, "wrong-password")
    assert login(client, "alice", PASSWORD).status_code == 429


def test_lock_expires_after_the_window(client, settings):
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 1
    UserFactory(username="alice")
    fail_until_limit(client, "alice")
    assert login(client, "alice", PASSWORD).status_code == 429
    from tests.security.servers import wait_until

    wait_until(lambda: login(Client(), "alice", PASSWORD).status_code == 302, timeout=10,
               what="the login lock to expire", interval=0.2)


def test_successful_login_resets_the_count(client):
    UserFactory(username="alice")
    for _ in range(settings.LOGIN_FAILURES_PER_USER_IP - 1):
        login(client, "alice", "wrong-password")
    assert login(client, "alice", PASSWORD).status_code == 302
    other = Client()
    for _ in range(settings.LOGIN_FAILURES_PER_USER_IP - 1):
        assert login(other, "alice", "wrong-password").status_code == 200
    assert login(other, "alice", PASSWORD).status_code == 302


def test_one_address_trying_many_usernames_is_locked(client, settings):
    settings.LOGIN_FAILURES_PER_IP = 8
    UserFactory(username="alice")
    for n in range(8):
        login(client, f"guess{n}", "wrong-password", ip="10.9.9.9")
    assert login(client, "alice", PASSWORD, ip="10.9.9.9").status_code == 429
    assert login(Client(), "alice", PASSWORD, ip="10.9.9.10").status_code == 302


def test_forwarded_for_header_cannot_choose_a_fresh_bucket(client):
    """Without a trusted proxy (FORWARDED_ALLOW_IPS empty) a client-sent X-Forwarded-For is ignored."""
    UserFactory(username="alice")
    for n in range(settings.LOGIN_FAILURES_PER_USER_IP):
        login(client, "alice", "wrong-password", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert login(client, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200").status_code == 429


def test_admin_login_is_rate_limited_too(client):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    admin_login = reverse("admin:login")
    for _ in range(settings.LOGIN_FAILURES_PER_USER_IP):
        assert login(client, "root", "wrong-password", url=admin_login).status_code == 200
    response = login(client, "root", PASSWORD, url=admin_login)
    assert response.status_code == 429
    assert not is_logged_in(client)


# --------------------------------------------------------------------------- no user enumeration


def _without_csrf(html: str) -> str:
    return re.sub(r'value="[A-Za-z0-9]{32,}"', 'value=""', re.sub(r'"X-CSRFToken": "[^"]*"', "", html))


def test_unknown_and_known_usernames_get_the_same_answer(client):
    UserFactory(username="alice")
    known = login(Client(), "alice", "wrong-password")
    unknown = login(Client(), "nobody-here", "wrong-password")
    assert known.status_code == unknown.status_code == 200
    assert _without_csrf(known.content.decode()).replace("alice", "X") == _without_csrf(
        unknown.content.decode()).replace("nobody-here", "X")


def test_inactive_user_gets_the_same_answer_as_a_wrong_password(client):
    UserFactory(username="gone", is_active=False)
    UserFactory(username="alice")
    inactive = login(Client(), "gone", PASSWORD)
    wrong = login(Client(), "alice", "wrong-password")
    assert inactive.status_code == wrong.status_code == 200
    assert _without_csrf(inactive.content.decode()).replace("gone", "X") == _without_csrf(
        wrong.content.decode()).replace("alice", "X")


def test_unknown_usernames_cost_one_password_hash_like_known_ones(client, settings):
    """Similar timing: the backend hashes the password even when the user does not exist."""
    settings.PASSWORD_HASHERS = ["tests.security.hashers.CountingMD5PasswordHasher"]
    UserFactory(username="alice")
    CountingMD5PasswordHasher.calls = 0
    login(Client(), "alice", "wrong-password")
    known_calls = CountingMD5PasswordHasher.calls
    CountingMD5PasswordHasher.calls = 0
    login(Client(), "nobody-here", "wrong-password")
    assert known_calls == CountingMD5PasswordHasher.calls == 1


def test_unknown_usernames_are_locked_like_known_ones(client):
    fail_until_limit(client, "nobody-here")
    assert login(client, "nobody-here", "whatever").status_code == 429


# --------------------------------------------------------------------------- sessions


def test_session_cookie_expires_after_a_working_day(client):
    UserFactory(username="alice")
    response = login(client, "alice", PASSWORD)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert int(cookie["max-age"]) == settings.SESSION_COOKIE_AGE <= 12 * 60 * 60
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"


def test_expired_session_is_sent_back_to_login(client):
    UserFactory(username="alice")
    login(client, "alice", PASSWORD)
    assert client.get("/").status_code == 200
    session = Session.objects.get(session_key=client.session.session_key)
    session.expire_date = timezone.now() - timedelta(seconds=1)
    session.save()
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_logout_ends_the_session_server_side(client):
    UserFactory(username="alice")
    login(client, "alice", PASSWORD)
    key = client.session.session_key
    assert client.post(reverse("logout")).status_code == 302
    assert not Session.objects.filter(session_key=key).exists()


# --------------------------------------------------------------------------- passwords


@pytest.mark.parametrize("weak", ["12345678901", "password123", "datafix", "alice-datafix-2026", "qwertyuiop"])
def test_weak_passwords_are_rejected(weak):
    user = get_user_model()(username="alice-datafix-2026")
    with pytest.raises(ValidationError):
        validate_password(weak, user)


def test_a_long_unusual_password_is_accepted():
    validate_password("correct-马-battery-staple-42", get_user_model()(username="alice"))


def test_admin_refuses_to_create_a_user_with_a_weak_password(client):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    response = client.post(reverse("admin:auth_user_add"), {
        "username": "newbie", "usable_password": "true", "password1": "12345678", "password2": "12345678",
    })
    assert response.status_code == 200  # the form again, with errors
    assert not get_user_model().objects.filter(username="newbie").exists()
    assert "errorlist" in response.content.decode()


def test_api_token_endpoint_is_rate_limited_too(client):
    """Every password check shares the limits: the API cannot be used to bypass the login page's."""
    UserFactory(username="alice")
    token_url = reverse("api:token")
    assert client.post(token_url, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1").status_code == 200
    for _ in range(settings.LOGIN_FAILURES_PER_USER_IP):
        response = client.post(token_url, {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
        assert response.status_code == 400
    refused = client.post(token_url, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert refused.status_code == 400 and "token" not in refused.json()
    assert login(Client(), "alice", PASSWORD, ip="10.0.0.1").status_code == 429
