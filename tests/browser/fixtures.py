"""Real-browser fixtures: Debian's headless Chromium driven by Playwright against a live server.

Registered for the whole suite in tests/conftest.py (pytest_plugins); use them from any test (mark it
`@pytest.mark.browser`):

    @pytest.mark.browser
    def test_something(browser_page, live_server, browser_login, reviewer):
        browser_login(reviewer)                    # signs in through /login/ (password "pw-for-tests-1")
        browser_page.goto(live_server.url + "/")  # a fresh Playwright `Page`, 1280×900, zh-CN

- `chromium` (module): the launched browser (never `playwright install`; /usr/bin/chromium or
  CHROMIUM_PATH). Without one the browser tests skip with one summary line saying how to get it,
  except with CI=true, where they fail.
- `browser_page`: a new context + page per test, closed afterwards; depends on `live_server`
  and therefore on `transactional_db`, so rows you create are visible to the server thread.
  Default timeout 10 s (times the machine's load factor); uncaught JS exceptions are collected in
  `browser_page.page_errors`, console errors in `browser_page.console_errors`.
- `browser_login(user, password="pw-for-tests-1")`: logs `user` in on `browser_page`.
"""
import inspect
import os
import shutil

import pytest

from tests.security.servers import load_factor

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# One line in the summary: every browser test's skip is reported from here (tests/conftest.py), so
# pytest's -ra folds them into a single line.
SKIP_LINE = inspect.currentframe().f_lineno
SKIP_REASON = (f"browser tests skipped: no Chromium at {CHROMIUM}. To run them install Debian's chromium and "
               "fonts-wqy-zenhei (`make test` does it when run as root with apt-get; else "
               "`sudo apt-get install chromium fonts-wqy-zenhei`), or set CHROMIUM_PATH")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium per test module.

    Module scope on purpose: Playwright's sync API keeps an event loop running in this thread
    while it is alive, which would break later tests that call `asyncio.run()`; and the
    DJANGO_ALLOW_ASYNC_UNSAFE it needs (the tests' ORM calls between page actions are synchronous
    and safe) must not leak into later tests or their subprocesses.
    """
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if in_ci():  # CI must run them: a missing browser there is a broken setup, never a skip
            pytest.fail(f"CI is set and there is no Chromium at {CHROMIUM}: apt-get install chromium fonts-wqy-zenhei")
        pytest.skip(SKIP_REASON)
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_page(chromium, live_server, transactional_db):
    """A fresh page in its own browser context (own cookies), pointed at nothing yet."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(10_000 * load_factor())  # stretched on a loaded machine
    page = context.new_page()
    page.console_errors = []  # console.error lines (includes failed resource loads such as /favicon.ico)
    page.page_errors = []  # uncaught JavaScript exceptions
    page.on("console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
    yield page
    context.close()


@pytest.fixture
def browser_login(browser_page, live_server):
    """Sign a user in through the login form; the factories' password is the default."""

    def login(user, password: str = "pw-for-tests-1"):
        browser_page.goto(f"{live_server.url}/login/")
        browser_page.fill("#id_username", user.get_username())
        browser_page.fill("#id_password", password)
        browser_page.click("button[type=submit]")
        browser_page.wait_for_url(lambda url: "/login/" not in url)
        return browser_page

    return login
