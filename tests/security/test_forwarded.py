"""Forwarded headers (X-Forwarded-For, X-Forwarded-Proto) are believed only from the configured proxy,
and gunicorn listens on the loopback address unless told otherwise.

A client that reaches the web process directly must not pick its own login rate-limit bucket per
attempt, nor claim HTTPS on a plain connection.
"""
import runpy
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from config.auth import client_ip
from tests.factories import UserFactory

PASSWORD = "pw-for-tests-1"
PROXY = "10.0.0.2"
pytestmark = pytest.mark.django_db


def login(client, password, *, ip, forwarded_for=None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}
    return client.post(reverse("login"), {"username": "alice", "password": password}, REMOTE_ADDR=ip, **extra)


@pytest.fixture
def proxy_configured(settings):
    """A deployment with one proxy in front (the old setting said so with NUM_PROXIES=1)."""
    settings.FORWARDED_ALLOW_IPS = [PROXY]
    settings.NUM_PROXIES = 1
    return settings


def test_a_client_reaching_the_web_process_directly_cannot_choose_its_address_per_attempt(proxy_configured):
    UserFactory(username="alice")
    attempts = [login(Client(), "wrong-password", ip="198.51.100.7", forwarded_for=f"192.0.2.{n}")
                for n in range(20)]
    assert [r.status_code for r in attempts[:5]] == [200] * 5
    assert {r.status_code for r in attempts[5:]} == {429}, "later wrong attempts were still checked"
    right = login(Client(), PASSWORD, ip="198.51.100.7", forwarded_for="192.0.2.250")
    assert right.status_code == 429


def test_behind_the_configured_proxy_the_address_it_appended_is_the_client(proxy_configured):
    UserFactory(username="alice")
    for _ in range(settings.LOGIN_FAILURES_PER_USER_IP):
        # The client forges a first entry; the proxy appends the address it saw.
        login(Client(), "wrong-password", ip=PROXY, forwarded_for="1.2.3.4, 203.0.113.7")
    assert login(Client(), PASSWORD, ip=PROXY, forwarded_for="5.6.7.8, 203.0.113.7").status_code == 429
    assert login(Client(), PASSWORD, ip=PROXY, forwarded_for="203.0.113.8").status_code == 302


def test_a_chain_of_trusted_proxies_is_walked_from_the_right(rf, settings):
    settings.FORWARDED_ALLOW_IPS = ["10.0.0.0/24", "::1"]
    request = rf.get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9, 10.0.0.5")
    assert client_ip(request) == "203.0.113.9"
    request = rf.get("/", REMOTE_ADDR="::1", HTTP_X_FORWARDED_FOR="203.0.113.10")
    assert client_ip(request) == "203.0.113.10"
    # Only proxies in the chain: the leftmost address is as far back as anyone can tell.
    request = rf.get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="10.0.0.4")
    assert client_ip(request) == "10.0.0.4"
    # Garbage in the header is not an address.
    request = rf.get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert client_ip(request) == "10.0.0.9"


def test_without_a_configured_proxy_forwarded_for_is_never_believed(rf, settings):
    settings.FORWARDED_ALLOW_IPS = []
    request = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert client_ip(request) == "127.0.0.1"


@pytest.fixture
def https_behind_proxy(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.FORWARDED_ALLOW_IPS = [PROXY]
    return settings


def test_forwarded_proto_from_a_direct_client_does_not_make_plain_http_secure(https_behind_proxy):
    response = Client().get("/login/", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301 and response["Location"].startswith("https://")


def test_forwarded_proto_from_the_proxy_is_believed(https_behind_proxy):
    response = Client().get("/login/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200


def test_gunicorn_binds_the_loopback_address_unless_told_otherwise(monkeypatch):
    config = Path(settings.BASE_DIR) / "gunicorn.conf.py"
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    monkeypatch.setenv("PORT", "8123")
    assert runpy.run_path(str(config))["bind"] == "127.0.0.1:8123"
    monkeypatch.setenv("GUNICORN_BIND", "0.0.0.0:9000")
    assert runpy.run_path(str(config))["bind"] == "0.0.0.0:9000"


def test_the_old_num_proxies_setting_is_reported_and_a_bad_proxy_address_is_an_error(monkeypatch, settings):
    from config.checks import check_forwarded_proxies

    monkeypatch.setenv("NUM_PROXIES", "1")
    assert [p.id for p in check_forwarded_proxies()] == ["datafix.W003"]
    monkeypatch.delenv("NUM_PROXIES")
    settings.FORWARDED_ALLOW_IPS = ["proxy.example"]
    assert [p.id for p in check_forwarded_proxies()] == ["datafix.E009"]
