"""Images and files: decompression bombs, pixel caps, content types, and paths confined to MEDIA_ROOT."""
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from core.errors import ApplicationError
from core.images import confine_path, inspect_image, media_path
from tests.security.pngs import write_png, ztxt_bomb_chunk
from tests.security.servers import PYTHON, ROOT, subprocess_env

pytestmark = pytest.mark.django_db

INSPECT_IN_CHILD = """
import json, sys
import django
django.setup()
from core.errors import ApplicationError
from core.images import inspect_image

def status_mb(field):
    # VmHWM/VmRSS belong to this process image (ru_maxrss would include the parent's before exec).
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

baseline = status_mb("VmRSS")
try:
    check = inspect_image(sys.argv[1])
    outcome = {"ok": True, "format": check.format}
except ApplicationError as exc:
    outcome = {"ok": False, "code": exc.code, "reason": exc.extra.get("reason"), "message": exc.message}
outcome["max_rss_mb"] = status_mb("VmHWM") - baseline
print(json.dumps(outcome, ensure_ascii=False))
"""


def inspect_in_child(path: Path) -> dict:
    """inspect_image in a fresh process, so its peak memory growth can be measured on its own."""
    result = subprocess.run(
        [PYTHON, "-c", INSPECT_IN_CHILD, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=subprocess_env(DJANGO_SETTINGS_MODULE="config.settings.test"),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def small_png(path: Path, size=(8, 8)) -> Path:
    Image.new("RGB", size, (200, 30, 30)).save(path, format="PNG")
    return path


# --------------------------------------------------------------------------- bombs and caps


def test_a_20000_by_20000_png_is_rejected_without_decoding_it(tmp_path):
    path = write_png(tmp_path / "huge.png", 20_000, 20_000, bit_depth=1)
    assert path.stat().st_size < 1_000_000  # a small file that would decode to 400 M pixels
    outcome = inspect_in_child(path)
    assert outcome["max_rss_mb"] < 100, outcome  # peak growth; decoding would need ≥ 400 MB
    assert outcome["ok"] is False and outcome["code"] == "image_invalid"
    # The user must learn the real reason (too many pixels), not "unreadable or corrupt".
    assert "像素过多" in outcome["message"] and "20000×20000" in outcome["message"], outcome["message"]
    assert outcome["reason"] == "too_many_pixels"


def test_a_decompression_bomb_is_rejected_with_bounded_memory(tmp_path):
    # 3.6 GB of RGBA pixels; only the first rows are in the file, which is what bombs rely on.
    path = write_png(tmp_path / "bomb.png", 30_000, 30_000, color_type=6, rows=2_000)
    outcome = inspect_in_child(path)
    assert outcome["max_rss_mb"] < 100, outcome
    assert (outcome["ok"], outcome["reason"]) == (False, "too_many_pixels"), outcome["message"]


def test_a_text_chunk_bomb_inside_the_pixel_cap_is_rejected(tmp_path):
    path = write_png(tmp_path / "text-bomb.png", 64, 64, extra_chunks=[ztxt_bomb_chunk(200 << 20)])
    outcome = inspect_in_child(path)
    assert (outcome["ok"], outcome["code"], outcome["reason"]) == (False, "image_invalid", "corrupt")
    assert outcome["max_rss_mb"] < 100, outcome


def test_an_oversized_file_is_rejected_before_opening(tmp_path, settings):
    settings.IMAGE_MAX_BYTES = 1000
    path = tmp_path / "big.png"
    path.write_bytes(b"\x89PNG" + os.urandom(5000))
    with pytest.raises(ApplicationError) as caught:
        inspect_image(path)
    assert caught.value.extra["reason"] == "too_many_bytes"
    assert "图片过大" in caught.value.message


@pytest.mark.parametrize(
    "content",
    [b"<html><script>alert(1)</script></html>", b"%PDF-1.4 fake", b"<svg xmlns='http://www.w3.org/2000/svg'/>"],
    ids=["html", "pdf", "svg"],
)
def test_files_posing_as_images_are_rejected(tmp_path, content):
    path = tmp_path / "photo.png"
    path.write_bytes(content)
    with pytest.raises(ApplicationError) as caught:
        inspect_image(path)
    assert caught.value.code == "image_invalid"


def test_an_allowed_image_passes(tmp_path):
    check = inspect_image(small_png(tmp_path / "ok.png"))
    assert (check.format, check.width, check.height, check.content_type) == ("PNG", 8, 8, "image/png")


# --------------------------------------------------------------------------- serving


@pytest.fixture
def signed_in(client, reviewer):
    client.force_login(reviewer)
    return client


def test_image_is_served_with_its_real_type_whatever_its_name(signed_in, media_root):
    small_png(media_root / "looks-like.html")
    response = signed_in.get("/images/looks-like.html")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_html_posing_as_an_image_is_never_served(signed_in, media_root):
    (media_root / "evil.png").write_bytes(b"<html><body><script>alert(document.cookie)</script></body></html>")
    response = signed_in.get("/images/evil.png")
    assert response.status_code == 404
    assert b"<script>alert" not in b"".join(getattr(response, "streaming_content", [response.content]))


def test_a_gif_with_html_inside_is_served_as_a_gif_not_sniffed(signed_in, media_root):
    buffer = io.BytesIO()
    Image.new("P", (4, 4)).save(buffer, format="GIF", comment=b"<html><script>alert(1)</script></html>")
    (media_root / "polyglot.gif").write_bytes(buffer.getvalue())
    response = signed_in.get("/images/polyglot.gif")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_images_need_a_login(client, media_root):
    small_png(media_root / "a.png")
    response = client.get("/images/a.png")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_bombs_are_not_served(signed_in, media_root):
    write_png(media_root / "huge.png", 20_000, 20_000, bit_depth=1)
    assert signed_in.get("/images/huge.png").status_code == 404


# --------------------------------------------------------------------------- path confinement

ESCAPES = [
    "../secret.png",
    "scenes/../../secret.png",
    "%2e%2e/secret.png",
    "%2E%2E%2Fsecret.png",
    "%252e%252e%252fsecret.png",
    "..%2fsecret.png",
    "..%5csecret.png",
    "..\\secret.png",
    "/{outside}/secret.png",
    "%2F{outside}%2Fsecret.png",
    "C:\\secret.png",
    "scenes/%00/../../secret.png",
]


@pytest.fixture
def secret_outside_media(tmp_path, media_root):
    """A valid image just outside MEDIA_ROOT: served if any escape works."""
    (media_root / "scenes").mkdir()
    return small_png(tmp_path / "secret.png", size=(3, 3))


@pytest.mark.parametrize("template", ESCAPES)
def test_escapes_are_refused_by_confine_path(template, secret_outside_media, media_root):
    relative = template.format(outside=str(secret_outside_media.parent).strip("/"))
    with pytest.raises(ApplicationError) as caught:
        media_path(relative)
    assert caught.value.code == "path_escape"


@pytest.mark.parametrize("template", ESCAPES)
def test_escapes_are_never_served(template, secret_outside_media, signed_in):
    relative = template.format(outside=str(secret_outside_media.parent).strip("/"))
    response = signed_in.get("/images/" + relative)
    assert response.status_code in (400, 404), relative
    body = b"".join(getattr(response, "streaming_content", [response.content]))
    assert secret_outside_media.read_bytes() not in body


def test_a_symlink_out_of_media_root_is_refused(secret_outside_media, media_root, signed_in):
    (media_root / "scenes" / "link.png").symlink_to(secret_outside_media)
    with pytest.raises(ApplicationError):
        media_path("scenes/link.png")
    assert signed_in.get("/images/scenes/link.png").status_code == 404


def test_a_normal_nested_path_is_allowed(media_root, signed_in):
    (media_root / "scenes" / "换货").mkdir(parents=True)
    small_png(media_root / "scenes" / "换货" / "图 1.png")
    assert media_path("scenes/换货/图 1.png") == (media_root / "scenes" / "换货" / "图 1.png").resolve()
    assert signed_in.get("/images/scenes/%E6%8D%A2%E8%B4%A7/%E5%9B%BE%201.png").status_code == 200


def test_confine_path_works_for_any_root(tmp_path):
    root = tmp_path / "exports"
    root.mkdir(exist_ok=True)
    with pytest.raises(ApplicationError):
        confine_path(root, "../media/x.png")
    assert confine_path(root, "run1/a.jsonl") == (root / "run1" / "a.jsonl").resolve()
