"""Image references are files under MEDIA_ROOT, never URLs: nothing is fetched from the network
(loopback, link-local or private addresses included), whatever an imported record says."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines.generation.sources import resolve_image
from pipelines.jobs.services import job_create, run_job_inline
from pipelines.models import ItemStatus, JobItem
from core.errors import ApplicationError
from core.images import media_path
from tests.factories import CategoryFactory, DatasetFactory, SampleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bait_server():
    """A local HTTP server that counts every request (it would also redirect to 169.254.169.254)."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


URL_FORMS = ["{base}/x.png", "//127.0.0.1:{port}/x.png", "file:///etc/passwd", "http://10.0.0.1/x.png",
             "http://[::1]:{port}/x.png", "http://169.254.169.254/latest/meta-data/"]


@pytest.mark.parametrize("form", URL_FORMS)
def test_image_urls_are_not_paths_and_are_never_fetched(bait_server, form):
    base, hits = bait_server
    reference = form.format(base=base, port=base.rsplit(":", 1)[1])
    assert resolve_image(reference) is None
    try:
        path = media_path(reference)
    except ApplicationError:
        path = None
    assert path is None or not path.exists()
    assert hits == []


def test_a_job_over_samples_with_url_images_fetches_nothing(bait_server, llm_simulator):
    base, hits = bait_server
    dataset = DatasetFactory(name="ssrf")
    category = CategoryFactory(dataset=dataset, name="换货")
    for n, reference in enumerate([f"{base}/a.png", "http://169.254.169.254/x.png", f"//127.0.0.1{base[16:]}/b.png"]):
        SampleFactory(label=category, external_id=f"u{n}", image=reference)
    job = run_job_inline(job_create(kind="classification", params={"dataset": dataset.name, "mode": 1}))
    assert hits == [], "the job fetched an image URL"
    assert not job.is_active
    assert JobItem.objects.filter(job=job).exclude(status__in=[ItemStatus.DONE, ItemStatus.FAILED]).count() == 0
