"""`make loadtest`: many reviewers at once against a production-like datafix, while a job runs.

Starts, in a scratch directory: a private redis-server (the real Redis, isolated from any other
use of the machine), a dedicated PostgreSQL database `datafix_loadtest` (on the server of
DATABASE_URL, or the local one; SQLite only if no PostgreSQL is reachable), the LLM simulator, one
Celery worker, and gunicorn with the production settings. It loads the demo dataset, creates
LOADTEST_USERS reviewers (each assigned one class), starts a classification job over the whole
dataset, and then lets every reviewer log in and loop — home page, class queue, sample page, save
a review (as htmx does) — with a short think time, for LOADTEST_SECONDS.

Prints p50/p95/p99 latency per kind of request and overall, the error count (5xx, transport
errors, unexpected statuses; version conflicts 409 are counted apart, they are the app working),
and how far the job got. Exits 1 when the target is missed (p95 ≥ 500 ms or any 5xx).

Environment: LOADTEST_USERS (50), LOADTEST_SECONDS (60), LOADTEST_THINK_MS ("2000,8000": think time per step),
LOADTEST_WEB_WORKERS (3), LOADTEST_KEEP=1 keeps the scratch directory and database.
"""
from __future__ import annotations

import asyncio
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
USERS = int(os.environ.get("LOADTEST_USERS", 50))
SECONDS = float(os.environ.get("LOADTEST_SECONDS", 60))
# A reviewer reads a sample (image, three reasonings) for a few seconds before deciding.
THINK = tuple(int(x) / 1000 for x in os.environ.get("LOADTEST_THINK_MS", "2000,8000").split(","))
WEB_WORKERS = os.environ.get("LOADTEST_WEB_WORKERS", "3")
PASSWORD = "load-test-password-2026"
DB_NAME = "datafix_loadtest"
TARGET_P95_MS = 500


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"loadtest: timed out waiting for {what}")
        time.sleep(0.2)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Processes:
    """Everything this run started, stopped in reverse order whatever happens."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.started.append((name, process))
        return process

    def stop_all(self) -> None:
        for _name, process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _name, process in reversed(self.started):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"loadtest: manage.py {' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def prepare_database() -> tuple[str | None, str]:
    """A fresh `datafix_loadtest` database; returns (DATABASE_URL or None for SQLite, description)."""
    base = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    if not base.startswith("postgres"):
        return None, "SQLite (DATABASE_URL is not PostgreSQL)"
    parts = urlsplit(base)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    try:
        import psycopg

        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL to use
        return None, f"SQLite (PostgreSQL not usable: {exc.__class__.__name__})"
    return urlunsplit(parts._replace(path=f"/{DB_NAME}")), f"PostgreSQL {parts.hostname}:{parts.port or 5432}/{DB_NAME}"


def drop_database(url: str | None) -> None:
    if not url:
        return
    import psycopg

    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


SETUP_USERS = """
from django.contrib.auth import get_user_model
from review.models import Assignment, Category, Dataset
dataset = Dataset.objects.order_by("pk").first()
categories = list(Category.objects.filter(dataset=dataset).order_by("position", "pk"))
User = get_user_model()
print(dataset.name)
for n in range(1, {users} + 1):
    user, _ = User.objects.get_or_create(username=f"load{{n:02d}}")
    user.set_password("{password}")
    user.save()
    category = categories[(n - 1) % len(categories)]
    Assignment.objects.get_or_create(reviewer=user, category=category)
    print(user.username, category.pk)
"""

START_JOB = """
from pipelines.jobs.services import job_create
from pipelines.models import JobKind
job = job_create(kind=JobKind.CLASSIFICATION, params={{"dataset": "{dataset}", "mode": 2}})
print(job.pk, job.items_total)
"""

JOB_STATE = """
from pipelines.models import Job
job = Job.objects.get(pk={job_id})
print(job.status, job.items_done, job.items_failed, job.items_total)
"""


# --------------------------------------------------------------------------- simulated reviewers


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    errors: list[str] = field(default_factory=list)
    conflicts: int = 0
    saves: int = 0

    def record(self, name: str, status: int, seconds: float) -> None:
        self.latencies[name].append(seconds * 1000)
        self.statuses[name][status] += 1


class Reviewer:
    """One person: logs in, then browses their class and saves reviews until the deadline."""

    def __init__(self, client: httpx.AsyncClient, base: str, username: str, category_id: int, stats: Stats):
        self.client, self.base, self.username, self.stats = client, base, username, stats
        self.cookies: dict[str, str] = {}
        self.category_url = f"/categories/{category_id}/"

    async def request(self, name: str, method: str, path: str, expected: tuple[int, ...], **kwargs):
        headers = {
            # The TLS proxy's header: gunicorn sees HTTPS, so Secure cookies and HSTS behave as in production.
            "X-Forwarded-Proto": "https",
            "Origin": f"https://{urlsplit(self.base).netloc}",
            "Referer": f"https://{urlsplit(self.base).netloc}/",
            **kwargs.pop("headers", {}),
        }
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method == "POST" and "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        started = time.perf_counter()
        try:
            response = await self.client.request(method, self.base + path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            self.stats.errors.append(f"{name}: {exc.__class__.__name__}")
            return None
        self.stats.record(name, response.status_code, time.perf_counter() - started)
        for header in response.headers.get_list("set-cookie"):
            cookie = SimpleCookie()
            cookie.load(header)
            for key, morsel in cookie.items():
                self.cookies[key] = morsel.value
        if response.status_code == 409:
            self.stats.conflicts += 1
        elif response.status_code not in expected:
            self.stats.errors.append(f"{name} {path}: HTTP {response.status_code}")
        return response

    async def login(self) -> bool:
        page = await self.request("login page", "GET", "/login/", (200,))
        if page is None:
            return False
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        response = await self.request(
            "login", "POST", "/login/", (302,),
            data={"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1) if token else ""},
        )
        if response is None or response.status_code != 302:
            return False
        home = await self.request("home", "GET", "/", (200,))
        return home is not None and home.status_code == 200

    async def think(self) -> None:
        await asyncio.sleep(random.uniform(*THINK))

    async def arrive(self, gate: asyncio.Semaphore) -> bool:
        """Log in (before the measured window: people log in once, over the morning)."""
        async with gate:
            if await self.login():
                return True
        self.stats.errors.append(f"{self.username}: could not log in")
        return False

    async def run(self, deadline: float) -> None:
        await asyncio.sleep(random.uniform(0, 3))  # not all in the same second
        loop = 0
        while time.monotonic() < deadline:
            loop += 1
            if loop % 5 == 0:
                await self.request("home", "GET", "/", (200,))
                await self.think()
            queue = await self.request("queue", "GET", self.category_url, (200,))
            if queue is None:
                continue
            samples = re.findall(r'href="(/samples/\d+/)[^"]*"', queue.text)
            if not samples:
                self.stats.errors.append(f"{self.username}: empty queue {self.category_url}")
                return
            await self.think()
            for sample_url in random.sample(samples, min(3, len(samples))):
                if time.monotonic() >= deadline:
                    break
                page = await self.request("sample", "GET", sample_url, (200,))
                if page is None:
                    continue
                version = re.search(r'name="version" value="(\d+)"', page.text)
                await self.think()
                form = {"version": version.group(1) if version else "0"}
                if random.random() < 0.6:
                    form["action"] = "keep"
                else:
                    form.update(cause=random.choice(["definitions_overlap", "label_wrong", "model_weak"]),
                                corrected_output="图片中显示商品规格选项，因此属于该类别。", note="压测")
                saved = await self.request("save", "POST", sample_url + "review/", (200,), data=form,
                                           headers={"HX-Request": "true"})
                if saved is not None and saved.status_code == 200:
                    self.stats.saves += 1
                await self.think()


async def drive(base: str, reviewers: list[tuple[str, int]], seconds: float, start_job) -> tuple[Stats, float]:
    """Log everyone in, start the job, then browse and save for `seconds`; (stats, elapsed)."""
    stats = Stats()
    limits = httpx.Limits(max_connections=len(reviewers) * 2, max_keepalive_connections=len(reviewers))
    async with httpx.AsyncClient(timeout=30, limits=limits, follow_redirects=False) as client:
        people = [Reviewer(client, base, name, category, stats) for name, category in reviewers]
        gate = asyncio.Semaphore(4)
        arrived = await asyncio.gather(*(person.arrive(gate) for person in people))
        await asyncio.to_thread(start_job)
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(person.run(deadline) for person, ok in zip(people, arrived) if ok))
    return stats, time.monotonic() - started


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


# Logging in is once a day per person and deliberately slow (PBKDF2): reported, not in the target.
STEADY_STATE = ("home", "queue", "sample", "save")


def report(stats: Stats, seconds: float) -> tuple[float, int, int]:
    print(f"\n{'request':<12}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}  statuses")
    everything: list[float] = []
    for name in sorted(stats.latencies):
        values = stats.latencies[name]
        if name in STEADY_STATE:
            everything += values
        statuses = " ".join(f"{code}×{n}" for code, n in sorted(stats.statuses[name].items()))
        print(f"{name:<12}{len(values):>7}{percentile(values, .5):>9.0f}{percentile(values, .95):>9.0f}"
              f"{percentile(values, .99):>9.0f}{max(values):>9.0f}  {statuses}")
    p95 = percentile(everything, .95)
    server_errors = sum(n for codes in stats.statuses.values() for code, n in codes.items() if code >= 500)
    print(f"{'browse+save':<12}{len(everything):>7}{percentile(everything, .5):>9.0f}{p95:>9.0f}"
          f"{percentile(everything, .99):>9.0f}{max(everything or [0]):>9.0f}")
    print(f"\nthroughput {len(everything) / seconds:.1f} requests/s, {stats.saves} reviews saved, "
          f"{stats.conflicts} version conflicts (409)")
    print(f"errors: {len(stats.errors)} (5xx: {server_errors})")
    for line in sorted(set(stats.errors))[:15]:
        print(f"  {line}")
    return p95, len(stats.errors), server_errors


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="datafix-loadtest-"))
    processes = Processes(scratch)
    database_url, database_text = prepare_database()
    try:
        redis_port, sim_port, web_port = free_port(), free_port(), free_port()
        redis_server = shutil.which("redis-server")
        env = dict(os.environ)
        env.update({
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "DATAFIX_VAR_DIR": str(scratch / "var"),
            "MEDIA_ROOT": str(scratch / "var" / "media"),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{sim_port}/v1",
            "OPENAI_API_KEY": "sk-simulator",
            "PORT": str(web_port),
            "WEB_CONCURRENCY": WEB_WORKERS,
            "LOG_LEVEL": "WARNING",
            "DB_CONN_MAX_AGE": "60",
        })
        env.pop("TEST_CELERY_BROKER_URL", None)
        if database_url:
            env["DATABASE_URL"] = database_url
        else:
            env.pop("DATABASE_URL", None)
        if redis_server:
            processes.start("redis", [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(scratch), "--maxmemory-policy", "noeviction"], env)
            wait_for(lambda: port_open(redis_port), timeout=20, what="redis-server")
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            broker_text = f"private redis-server :{redis_port}"
        else:
            env.pop("REDIS_URL", None)
            broker_text = "SQLite broker (no redis-server binary)"
        (scratch / "var" / "media").mkdir(parents=True)
        print(f"loadtest: {USERS} reviewers for {SECONDS:.0f} s; database {database_text}; broker {broker_text}; "
              f"logs in {scratch}")

        manage(env, "migrate", "--noinput")
        manage(env, "collectstatic", "--noinput")
        manage(env, "load_demo")
        lines = manage(env, "shell", "-c", SETUP_USERS.format(users=USERS, password=PASSWORD)).strip().splitlines()
        lines = lines[-(USERS + 1):]
        dataset = lines[0]
        reviewers = [(name, int(category)) for name, category in (line.split() for line in lines[1:])]

        processes.start("simulator", [PYTHON, "manage.py", "llm_simulator", "--port", str(sim_port),
                                      "--latency-ms", "1500"], env)  # a hosted model's answer time
        processes.start("worker", [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "-l", "warning",
                                   "-Q", "classification,generation,extraction,dpo,default", "--concurrency", "1",
                                   "-n", f"loadtest-{web_port}@%h"], env)
        processes.start("web", [str(ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py",
                                "--bind", f"127.0.0.1:{web_port}"], env)
        wait_for(lambda: port_open(sim_port) and port_open(web_port), timeout=60, what="simulator and gunicorn")

        job = {}

        def start_job():
            job_id, total = manage(env, "shell", "-c", START_JOB.format(dataset=dataset)).strip().splitlines()[-1].split()
            job["id"] = job_id
            print(f"loadtest: {USERS} reviewers logged in; classification job #{job_id} over {total} samples started")

        stats, elapsed = asyncio.run(drive(f"http://127.0.0.1:{web_port}", reviewers, SECONDS, start_job))
        job_id = job["id"]
        p95, errors, server_errors = report(stats, elapsed)
        status, done, failed, total = manage(env, "shell", "-c", JOB_STATE.format(job_id=job_id)).split()[-4:]
        print(f"job #{job_id}: {status}, {done} done + {failed} failed of {total} items during the test")
        ok = p95 < TARGET_P95_MS and errors == 0 and server_errors == 0
        print(f"\nRESULT: p95 {p95:.0f} ms (target < {TARGET_P95_MS}), errors {errors}, 5xx {server_errors} "
              f"→ {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        processes.stop_all()
        if not os.environ.get("LOADTEST_KEEP"):
            drop_database(database_url)
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
