"""Path confinement and image checks that every file-handling area relies on."""
import hashlib
import os
import re

import pytest
from PIL import Image

from core.errors import ApplicationError
from core.images import confine_path, inspect_image, media_path, store_image, stored_image_name


@pytest.fixture(params=["resolved-each-time", "folders-resolved-once"])
def resolved(request):
    """confine_path's two ways: resolving the whole path each call, or with a cache of folders."""
    return None if request.param == "resolved-each-time" else {}


@pytest.mark.parametrize("escape", [
    "../secret.png", "a/../../secret.png", "/etc/passwd", "..\\secret.png", "C:\\Windows\\x.png",
    "%2e%2e/secret.png", "%2e%2e%2fsecret.png", "%252e%252e%252fsecret.png", "a/%2E%2E/%2E%2E/x", "x\x00.png", "",
])
def test_escapes_are_refused(tmp_path, escape, resolved):
    with pytest.raises(ApplicationError) as caught:
        confine_path(tmp_path, escape, resolved=resolved)
    assert caught.value.code == "path_escape"


def test_symlink_out_of_the_root_is_refused(tmp_path, resolved):
    root, outside = tmp_path / "root", tmp_path / "outside.png"
    root.mkdir()
    outside.write_bytes(b"x")
    os.symlink(outside, root / "link.png")
    with pytest.raises(ApplicationError):
        confine_path(root, "link.png", resolved=resolved)


def test_a_linked_folder_out_of_the_root_is_refused(tmp_path, resolved):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (outside / "x.png").write_bytes(b"x")
    os.symlink(outside, root / "a" / "linked")
    with pytest.raises(ApplicationError):
        confine_path(root, "a/linked/x.png", resolved=resolved)


def test_paths_inside_the_root_resolve(tmp_path, resolved):
    assert confine_path(tmp_path, "a/./b/c.png", resolved=resolved) == (tmp_path / "a" / "b" / "c.png").resolve()
    assert confine_path(tmp_path, "图片/一.png", resolved=resolved) == (tmp_path / "图片" / "一.png").resolve()
    assert confine_path(tmp_path, ".", resolved=resolved) == tmp_path.resolve()


def test_media_path_is_confined_to_media_root(media_root):
    assert media_path("datasets/1/x.png").is_relative_to(media_root.resolve())
    with pytest.raises(ApplicationError):
        media_path("../db.sqlite3")


def _png(path, size=(20, 10)):
    Image.new("RGB", size, "red").save(path, format="PNG")
    return path


def test_a_good_image_passes(tmp_path):
    check = inspect_image(_png(tmp_path / "ok.png"))
    assert (check.format, check.width, check.height, check.content_type) == ("PNG", 20, 10, "image/png")


def test_corrupt_and_truncated_images_are_reported(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    data = _png(tmp_path / "t.png", (200, 200)).read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    for name in ("junk.png", "trunc.png"):
        with pytest.raises(ApplicationError) as caught:
            inspect_image(tmp_path / name)
        assert caught.value.code == "image_invalid"


def test_byte_cap_is_checked_before_opening(tmp_path, settings):
    settings.IMAGE_MAX_BYTES = 10
    with pytest.raises(ApplicationError) as caught:
        inspect_image(_png(tmp_path / "big.png"))
    assert caught.value.extra["reason"] == "too_many_bytes"


def test_pixel_cap_is_checked_from_the_header(tmp_path, settings):
    settings.IMAGE_MAX_PIXELS = 100
    with pytest.raises(ApplicationError) as caught:
        inspect_image(_png(tmp_path / "wide.png", (50, 50)))
    assert caught.value.extra["reason"] == "too_many_pixels"


def test_disallowed_format_is_refused(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "x.tiff", format="TIFF")
    with pytest.raises(ApplicationError) as caught:
        inspect_image(tmp_path / "x.tiff")
    assert caught.value.extra["reason"] == "format"


def test_store_image_copies_under_media_root_with_the_detected_extension(tmp_path, media_root):
    source = _png(tmp_path / "photo.jpg")  # misnamed: really a PNG
    relative = store_image(source, folder="datasets/7", owner="../../id 1")
    assert re.fullmatch(r"datasets/7/[0-9a-f]{2}/id_1-[0-9a-f]{20}\.png", relative), relative
    assert (media_root / relative).read_bytes() == source.read_bytes()
    assert store_image(source, folder="datasets/7", owner="../../id 1") == relative  # same owner, same bytes


def test_a_datasets_images_are_spread_over_subfolders_not_piled_in_one(tmp_path, media_root):
    """A million samples' images in one folder: creating each file there cost the kernel up to half a
    millisecond. They go to 256 subfolders named by two hex digits of the name's hash."""
    source = _png(tmp_path / "a.png")
    stored = [store_image(source, folder="datasets/7", owner=f"样本{i}") for i in range(64)]
    assert all(re.fullmatch(r"datasets/7/[0-9a-f]{2}/[^/]+\.png", path) for path in stored), stored
    assert len({path.split("/")[2] for path in stored}) > 16
    assert {p.name for p in (media_root / "datasets" / "7").iterdir()} == {path.split("/")[2] for path in stored}
    for path in stored:
        assert (media_root / path).read_bytes() == source.read_bytes()


def test_a_subfolder_linked_out_of_the_media_root_is_refused(tmp_path, media_root):
    source = _png(tmp_path / "a.png")
    stem = stored_image_name("样本1", hashlib.sha256(source.read_bytes()).hexdigest())
    outside = tmp_path / "outside"
    outside.mkdir()
    (media_root / "datasets" / "7").mkdir(parents=True)
    (media_root / "datasets" / "7" / stem[-20:][:2]).symlink_to(outside, target_is_directory=True)
    with pytest.raises(ApplicationError) as caught:
        store_image(source, folder="datasets/7", owner="样本1")
    assert caught.value.code == "path_escape"
    assert list(outside.iterdir()) == []


def test_an_image_stored_before_the_subfolders_is_kept_where_it_is(tmp_path, media_root):
    """Stored by an earlier version directly in the dataset's folder: a re-import finds it there and
    neither copies it again nor moves the sample's path."""
    source = _png(tmp_path / "a.png")
    sharded = store_image(source, folder="datasets/7", owner="样本1")
    flat = media_root / "datasets" / "7" / sharded.rsplit("/", 1)[1]
    (media_root / sharded).rename(flat)
    assert store_image(source, folder="datasets/7", owner="样本1") == f"datasets/7/{flat.name}"
    assert not (media_root / sharded).exists()


def test_stored_images_of_different_owners_or_contents_never_share_a_file(tmp_path, media_root):
    red, blue = _png(tmp_path / "red.png"), tmp_path / "blue.png"
    Image.new("RGB", (4, 4), "blue").save(blue, format="PNG")
    names = {store_image(red, folder="d", owner=owner) for owner in ("样本1", "图片1", "a/b", "a_b")}
    assert len(names) == 4
    assert store_image(blue, folder="d", owner="样本1") not in names  # a changed image: a new file


def _count_header_parses(monkeypatch) -> list[str]:
    from PIL import JpegImagePlugin, PngImagePlugin

    parsed: list[str] = []
    for plugin in (PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile):
        def counting(self, original=plugin._open):
            parsed.append(self.format)
            return original(self)
        monkeypatch.setattr(plugin, "_open", counting)
    return parsed


def test_an_image_is_parsed_once_per_check(tmp_path, media_root, monkeypatch):
    """An import checks every image it stores: the header is read once, and the image read from it
    is the one verified (it was parsed a second time to verify it)."""
    png = _png(tmp_path / "a.png")
    jpeg = tmp_path / "b.jpg"
    Image.new("RGB", (8, 8), "green").save(jpeg, format="JPEG")
    parsed = _count_header_parses(monkeypatch)
    store_image(png, folder="d", owner="1")
    inspect_image(jpeg)
    assert parsed == ["PNG", "JPEG"]


def test_a_damaged_chunk_is_still_found_by_the_one_parse(tmp_path):
    data = bytearray(_png(tmp_path / "ok.png", (64, 64)).read_bytes())
    at = data.index(b"IDAT") + 8  # a byte of the compressed pixels: the chunk's CRC no longer matches
    data[at] ^= 0xFF
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(ApplicationError) as caught:
        inspect_image(tmp_path / "bad.png")
    assert caught.value.extra["reason"] == "corrupt"
