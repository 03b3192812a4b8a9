"""Importing the team's own folders (seed 004) as their scripts write them: nothing lost or misfiled.

Runs on SQLite and on PostgreSQL (CI runs the suite on both): NUL characters and over-long fields
are what PostgreSQL refuses and SQLite stores.
"""
import hashlib
import json
from dataclasses import dataclass, field

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.errors import ApplicationError
from review.importing import import_classification
from review.models import Category, Dataset, Reasoning, Sample

from .team_folder import (
    EXCHANGE,
    ORDER_FAILED,
    REFUND,
    REFUSED_ID,
    WINDOWS_PREFIX,
    build_team_train,
    png,
    team_file_name,
    write_array,
    write_comma_lines,
)

pytestmark = pytest.mark.django_db


def write_jsonl(path, lines, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    path.write_text(text, encoding=encoding)


def categories(root, *names):
    root.mkdir(parents=True, exist_ok=True)
    (root / "categories.json").write_text(json.dumps({n: f"{n}的定义" for n in names}, ensure_ascii=False),
                                          encoding="utf-8")


def manifest_record(sample_id, label="换货", image=None, **extra):
    record = {"id": sample_id, "label": label,
              "outputs": {"1": f"自由{sample_id}\n类别：{label}", "2": f"分析{sample_id}\n类别：{label}",
                          "3": f"简短{sample_id}\n类别：{label}"}}
    if image is not None:
        record["image"] = image
    return record | extra


def file_digest(media_root, sample):
    return hashlib.sha256((media_root / sample.image).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the shapes, one by one
def test_an_image_given_as_a_one_element_list_is_imported(tmp_path, media_root):
    root = tmp_path / "in"
    categories(root, "换货")
    png(root / "images" / "a.png", "red")
    write_jsonl(root / "m.jsonl", [manifest_record("a", image=["images/a.png"])])
    report = import_classification(path=root, dataset_name="scenes")
    assert report.problems == []
    sample = Sample.objects.get(external_id="a")
    assert sample.image and (media_root / sample.image).is_file()


@dataclass
class ImageWorkers:
    mode: str
    stored_by_processes: set[str] = field(default_factory=set)  # the samples whose image a process stored

    def expect_from_processes(self, ids: set[str]) -> None:
        """In the processes run, exactly these were stored there (the others by the threads after)."""
        assert self.stored_by_processes == (ids if self.mode == "processes" else set())


def watch_batch_processes(monkeypatch, on_result) -> None:
    """Call `on_result(what the process returned)` for every run of a batch's samples an import hands
    to its processes (`importer.prepare_in_processes`), as soon as the process has returned it."""
    from review.importing import importer

    original = importer.image_store_processes

    def spied(*args, **kwargs):
        processes = original(*args, **kwargs)
        submit = processes.submit

        def submit_and_watch(fn, *args, **kw):
            future = submit(fn, *args, **kw)
            on_result(future.result())
            return future

        processes.submit = submit_and_watch
        return processes

    monkeypatch.setattr(importer, "image_store_processes", spied)


@pytest.fixture(params=["threads", "processes"])
def image_workers(request, monkeypatch):
    """Each image test runs twice: the images located and stored by the import's threads, and (as
    from PROCESS_BATCHES_FROM samples) by its processes."""
    from review.importing import importer

    workers = ImageWorkers(request.param)
    if request.param == "processes":
        monkeypatch.setattr(importer, "PROCESS_BATCHES_FROM", 1)

        def record(assembled):
            workers.stored_by_processes.update(entry.external_id for entry in assembled.entries
                                               if not isinstance(entry, tuple) and entry.image)

        watch_batch_processes(monkeypatch, record)
    return workers


def test_windows_paths_from_another_machine_map_through_image_root(tmp_path, media_root, image_workers):
    root, local = tmp_path / "in", tmp_path / "copy" / "tianchi"
    categories(root, "换货")
    png(local / "train" / "images" / "x.png", "red")
    png(local / "other" / "y.png", "blue")
    png(local / "deep" / "er" / "z.png", "green")  # found by its name alone: no tail of its path is there
    write_jsonl(root / "m.jsonl", [
        manifest_record("x", image=[WINDOWS_PREFIX + "x.png"]),
        manifest_record("y", image="/data/somewhere/y.png"),
        manifest_record("z", image="D:\\elsewhere\\z.png"),
    ])
    report = import_classification(path=root, dataset_name="scenes", image_root=local)
    assert report.problems == []
    x, y, z = (Sample.objects.get(external_id=sid) for sid in "xyz")
    assert file_digest(media_root, x) == hashlib.sha256((local / "train/images/x.png").read_bytes()).hexdigest()
    assert file_digest(media_root, y) == hashlib.sha256((local / "other/y.png").read_bytes()).hexdigest()
    assert file_digest(media_root, z) == hashlib.sha256((local / "deep/er/z.png").read_bytes()).hexdigest()
    image_workers.expect_from_processes({"x"})  # y and z by their names: the index is the import's own


def test_image_root_links_that_lead_outside_it_are_not_followed(tmp_path, media_root, image_workers):
    """A file, or a folder, under --image-root that is a symlink to somewhere outside it is not an
    image of the import (the path is confined): reported, not stored."""
    root, local, outside = tmp_path / "in", tmp_path / "copy" / "tianchi", tmp_path / "secret"
    categories(root, "换货")
    png(outside / "x.png", "red")
    png(outside / "pics" / "y.png", "blue")
    png(local / "train" / "images" / "ok.png", "green")
    (local / "train" / "images" / "x.png").symlink_to(outside / "x.png")
    (local / "train" / "linked").symlink_to(outside / "pics")
    write_jsonl(root / "m.jsonl", [
        manifest_record("x", image=[WINDOWS_PREFIX + "x.png"]),
        manifest_record("y", image=["E:\\天池比赛\\tianchi\\train\\linked\\y.png"]),
        manifest_record("ok", image=[WINDOWS_PREFIX + "ok.png"]),
    ])
    report = import_classification(path=root, dataset_name="scenes", image_root=local)
    assert Sample.objects.get(external_id="ok").image
    assert not Sample.objects.filter(external_id__in=["x", "y"]).exclude(image="").exists()
    reported = " ".join(p.message for p in report.problems)
    assert "x.png" in reported and "y.png" in reported
    stored = [p.name for p in media_root.rglob("*.png")]
    assert len(stored) == 1
    image_workers.expect_from_processes({"ok"})


def test_path_prefix_replaces_the_old_machines_folder(tmp_path, media_root):
    root, local = tmp_path / "in", tmp_path / "mine"
    categories(root, "换货")
    png(local / "images" / "x.png", "red")
    write_jsonl(root / "m.jsonl", [manifest_record("x", image=[WINDOWS_PREFIX + "x.png"])])
    report = import_classification(path=root, dataset_name="scenes",
                                   path_prefixes=[("E:\\天池比赛\\tianchi\\train", str(local))])
    assert report.problems == [] and Sample.objects.get(external_id="x").image


def test_absolute_paths_without_a_mapping_are_reported_once_with_the_fix(tmp_path, capsys):
    root = tmp_path / "in"
    categories(root, "换货")
    write_jsonl(root / "m.jsonl", [manifest_record(f"s{i}", image=[WINDOWS_PREFIX + f"{i}.png"]) for i in range(5)])
    report = import_classification(path=root, dataset_name="scenes")
    assert len(report.problems) == 1
    message = report.problems[0].message
    assert "5" in message and "--image-root" in message and "--path-prefix" in message
    assert not Sample.objects.exists()
    with pytest.raises(CommandError):
        call_command("import_classification", str(root), "--dataset", "scenes")
    out = capsys.readouterr().out
    assert out.count("--image-root") == 1 and "m.jsonl:1" in out and "m.jsonl:2" not in out


def test_save_train_files_never_create_a_class_of_their_own(tmp_path):
    root = tmp_path / "train"
    records = [{"id": "d-1", "image": [], "output": f"分析\n类别：{ORDER_FAILED}"}]
    write_array(root / "reasonbyQwen72b_model3" / team_file_name(ORDER_FAILED), records)
    write_array(root / "reasonbyQwen72b_model3" / team_file_name(EXCHANGE), [
        {"id": "e-1", "image": [], "output": f"分析\n类别：{EXCHANGE}"}])
    write_array(root / "train.json", [{"id": "d-1", "image": [], "output": ORDER_FAILED},
                                      {"id": "e-1", "image": [], "output": EXCHANGE}])
    # A new dataset: every class is new, so nothing is created without --create-classes …
    with pytest.raises(ApplicationError) as excinfo:
        import_classification(path=root, dataset_name="team")
    assert "--create-classes" in excinfo.value.message
    assert not Category.objects.exists() and not Sample.objects.exists()
    # … and with it, the classes are train.json's names, never "save_train_…".
    report = import_classification(path=root, dataset_name="team", create_classes=True)
    assert sorted(Category.objects.values_list("name", flat=True)) == sorted([ORDER_FAILED, EXCHANGE])
    assert sorted(report.classes_created) == sorted([ORDER_FAILED, EXCHANGE])
    assert Reasoning.objects.get(sample__external_id="d-1").is_correct is True


def test_an_unknown_class_is_an_error_naming_it_and_the_closest_known_ones(tmp_path):
    root = tmp_path / "train"
    categories(root, "退款页面", "退货页面", "换货页面", "物流跟踪页面")
    write_array(root / "reasonbyQwen72b_model2" / "save_train_退款页.json", [{"id": "a", "output": "类别：退款页面"}])
    write_array(root / "reasonbyQwen72b_model2" / "save_train_物流跟综页面.json", [{"id": "b", "output": "类别：物流"}])
    write_array(root / "reasonbyQwen72b_model2" / "换货.json", [{"id": "c", "output": "类别：换货页面"}])
    with pytest.raises(ApplicationError) as excinfo:
        import_classification(path=root, dataset_name="team")
    # Shortened names of known classes are no error; the misspelt one comes with the closest names.
    unknown = excinfo.value.extra["unknown"]
    assert list(unknown) == ["物流跟综页面"] and unknown["物流跟综页面"][0] == "物流跟踪页面"
    assert "物流跟踪页面" in excinfo.value.message and "--create-classes" in excinfo.value.message
    assert not Sample.objects.exists() and Category.objects.count() == 0
    with pytest.raises(CommandError) as excinfo:
        call_command("import_classification", str(root), "--dataset", "team")
    assert "物流跟综页面" in str(excinfo.value)


def test_info_ectra_lines_give_each_sample_its_description(tmp_path):
    root = tmp_path / "train"
    categories(root, "换货页面", "退款页面")
    write_array(root / "reasonbyQwen72b_model3" / "换货.json", [{"id": "a", "output": "类别：换货页面"}])
    write_comma_lines(root / "info_ectra" / "0.json", [
        {"id": "a", "image": [], "output": "换货页面", "picture2text": "申请换货页面，显示换货原因。"},
        {"id": "b", "image": [], "output": "退款页面", "picture2text": "退款详情，退款金额 ¥89。"},
    ])
    with (root / "info_ectra" / "0.json").open("a", encoding="utf-8") as fh:
        fh.write('{"id": "c", "image": [], "output": "退款页面", "picture2te')  # a run cut off mid-line
    report = import_classification(path=root, dataset_name="team")
    assert [p.location for p in report.problems] == ["info_ectra/0.json:3"]
    a, b = Sample.objects.get(external_id="a"), Sample.objects.get(external_id="b")
    assert a.description == "申请换货页面，显示换货原因。" and a.label.name == "换货页面"
    assert b.description.startswith("退款详情") and b.label.name == "退款页面" and not b.reasonings.exists()
    # A later import of the mode folder alone keeps the descriptions.
    import_classification(path=root / "reasonbyQwen72b_model3", dataset_name="team")
    assert Sample.objects.get(external_id="a").description == "申请换货页面，显示换货原因。"


def test_import_info_extra_reads_the_team_lines_and_stores_picture2text(tmp_path, capsys):
    root = tmp_path / "train"
    categories(root, "换货页面")
    write_array(root / "reasonbyQwen72b_model3" / "换货.json", [{"id": "a", "output": "类别：换货页面"}])
    import_classification(path=root, dataset_name="team")
    write_comma_lines(tmp_path / "info_ectra" / "0.json", [
        {"id": "a", "image": ["E:\\x\\a.jpg"], "output": "换货页面", "picture2text": "申请换货页面。"},
        {"id": "zzz", "image": [], "output": "换货页面", "picture2text": "没有这个样本"},
    ])
    call_command("import_info_extra", "--dataset", "team", str(tmp_path / "info_ectra"))
    sample = Sample.objects.get(external_id="a")
    assert sample.description == "申请换货页面。"
    assert sample.image_info is None  # the label in "output" is not an image description
    assert "zzz" in capsys.readouterr().err


def test_train_json_labels_check_every_reasonings_class(tmp_path):
    root = tmp_path / "train"
    categories(root, "换货页面", "退款页面")
    write_array(root / "reasonbyQwen72b_model2" / "换货.json", [
        {"id": "a", "output": "类别：换货页面"}, {"id": "b", "output": "类别：换货页面"}])
    write_array(root / "train.json", [
        {"id": "a", "image": [], "output": "换货页面"},
        {"id": "b", "image": [], "output": "退款页面"},  # filed under 换货 in the folder: reported
        {"id": "c", "image": [], "output": "退款页面"},  # no reasoning at all (refused): still a sample
        {"id": "q", "image": [], "output": "反馈密封性不好"},  # another task of the competition
    ])
    report = import_classification(path=root, dataset_name="team")
    assert [p.location for p in report.problems] == ["reasonbyQwen72b_model2/换货.json#1"]
    assert "退款页面" in report.problems[0].message
    labels = dict(Sample.objects.values_list("external_id", "label__name"))
    assert labels == {"a": "换货页面", "b": "退款页面", "c": "退款页面"}
    assert Reasoning.objects.get(sample__external_id="b").is_correct is False
    assert any("train.json" in n.location and "1" in n.message for n in report.notes)


# --------------------------------------------------------------------------- never collide or erase
def test_ids_differing_only_in_non_ascii_or_punctuation_keep_their_own_images(tmp_path, media_root):
    root = tmp_path / "in"
    categories(root, "换货")
    ids = ["样本1", "图片1", "a/b", "a_b", "a b", "a:b"]
    colors = ["red", "green", "blue", "yellow", "purple", "orange"]
    for i, color in enumerate(colors):
        png(root / "images" / f"{i}.png", color)
    write_jsonl(root / "m.jsonl", [manifest_record(sid, image=f"images/{i}.png") for i, sid in enumerate(ids)])
    import_classification(path=root, dataset_name="scenes")
    stored = {s.external_id: s for s in Sample.objects.all()}
    assert len({s.image for s in stored.values()}) == len(ids)
    for i, sid in enumerate(ids):
        assert file_digest(media_root, stored[sid]) == hashlib.sha256((root / "images" / f"{i}.png").read_bytes()).hexdigest()


def test_a_large_imports_images_are_checked_and_stored_by_processes_as_by_threads(tmp_path, media_root, settings,
                                                                                   monkeypatch):
    """From PROCESS_BATCHES_FROM samples on, the images are checked and copied by processes of their
    own, with this process's settings: the same files under the same names in this test's
    MEDIA_ROOT, and a broken image reported, as when threads store them."""
    from review.importing import importer

    root = tmp_path / "in"
    categories(root, "换货")
    png(root / "images" / "a.png", "red")
    png(root / "images" / "b.png", "blue")
    (root / "images" / "bad.png").write_bytes(b"not an image")
    write_jsonl(root / "m.jsonl", [manifest_record("a", image="images/a.png"), manifest_record("b", image="images/b.png"),
                                   manifest_record("c", image="images/bad.png")])
    monkeypatch.setattr(importer, "PROCESS_BATCHES_FROM", 1)
    submitted = []
    watch_batch_processes(monkeypatch, lambda assembled: submitted.extend(
        (entry[0] if isinstance(entry, tuple) else entry).external_id for entry in assembled.entries))
    report = import_classification(path=root, dataset_name="scenes")
    assert sorted(submitted) == ["a", "b", "c"]
    by_processes = dict(Sample.objects.values_list("external_id", "image"))
    assert sorted(by_processes) == ["a", "b"]
    assert [p.message for p in report.problems if "c：" in p.message] == ["c：图片无法读取或已损坏：bad.png（无法识别的文件头）"]
    for sid in ("a", "b"):
        sample = Sample.objects.get(external_id=sid)
        assert file_digest(media_root, sample) == hashlib.sha256((root / "images" / f"{sid}.png").read_bytes()).hexdigest()

    settings.IMPORT_PROCESSES = 0  # the threads alone, into another dataset
    submitted.clear()
    import_classification(path=root, dataset_name="again")
    assert submitted == []
    by_threads = dict(Sample.objects.filter(dataset__name="again").values_list("external_id", "image"))
    assert {k: v.rsplit("/", 1)[1] for k, v in by_threads.items()} == {k: v.rsplit("/", 1)[1] for k, v in by_processes.items()}


def test_a_reimport_lacking_a_field_keeps_what_is_stored(tmp_path):
    root = tmp_path / "in"
    categories(root, "换货")
    png(root / "images" / "a.png", "red")
    write_jsonl(root / "m.jsonl", [manifest_record("a", image="images/a.png", image_info={"可见文字": ["申请换货"]})])
    import_classification(path=root, dataset_name="scenes")
    before = Sample.objects.get(external_id="a")
    # The mode folder has neither image nor image_info.
    (root / "m.jsonl").unlink()
    write_array(root / "reasonbyQwen72b_model3" / "换货.json", [{"id": "a", "output": "新的\n类别：换货"}])
    import_classification(path=root, dataset_name="scenes")
    after = Sample.objects.get(external_id="a")
    assert after.image == before.image and after.image_info == {"可见文字": ["申请换货"]}
    assert after.reasonings.get(mode=3).output == "新的\n类别：换货"


def test_the_same_id_twice_in_one_mode_is_reported_not_silently_overwritten(tmp_path):
    root = tmp_path / "train"
    categories(root, "换货", "退款")
    write_array(root / "reasonbyQwen72b_model3" / "换货.json", [{"id": "a", "output": "第一条\n类别：换货"}])
    write_array(root / "reasonbyQwen72b_model3" / "退款.json", [{"id": "a", "output": "第二条\n类别：退款"}])
    report = import_classification(path=root, dataset_name="team")
    assert [p.location for p in report.problems] == ["reasonbyQwen72b_model3/退款.json#0"]
    assert "reasonbyQwen72b_model3/换货.json#0" in report.problems[0].message
    assert Reasoning.objects.get(sample__external_id="a").output == "第一条\n类别：换货"


# --------------------------------------------------------------------------- bad bytes never crash
def test_undecodable_lines_are_reported_by_file_and_line_and_the_rest_imported(tmp_path):
    root = tmp_path / "in"
    categories(root, "换货")
    path = root / "m.jsonl"
    write_jsonl(path, [manifest_record("a"), manifest_record("b"), manifest_record("c")])
    lines = path.read_bytes().split(b"\n")
    lines[1] = json.dumps(manifest_record("b", note="换货"), ensure_ascii=False).encode("gbk")
    path.write_bytes(b"\n".join(lines))
    report = import_classification(path=root, dataset_name="scenes")
    assert [p.location for p in report.problems] == ["m.jsonl:2"]
    assert "--encoding" in report.problems[0].message
    assert set(Sample.objects.values_list("external_id", flat=True)) == {"a", "c"}


def test_a_gbk_file_imports_with_encoding_beside_utf8_files(tmp_path):
    root = tmp_path / "train"
    categories(root, "换货", "退款")
    write_array(root / "reasonbyQwen72b_model2" / "换货.json", [{"id": "a", "output": "分析：申请换货\n类别：换货"}],
                indent=4, encoding="gbk")
    write_array(root / "reasonbyQwen72b_model2" / "退款.json", [{"id": "b", "output": "分析：退款详情\n类别：退款"}],
                indent=4)
    report = import_classification(path=root, dataset_name="team")
    assert [p.location for p in report.problems] == ["reasonbyQwen72b_model2/换货.json:4"]  # the line with the bytes
    assert Sample.objects.count() == 1
    report = import_classification(path=root, dataset_name="team", encoding="gbk")
    assert report.problems == []
    assert Reasoning.objects.get(sample__external_id="a").output == "分析：申请换货\n类别：换货"
    assert Reasoning.objects.get(sample__external_id="b").output == "分析：退款详情\n类别：退款"


def test_a_utf16_file_with_a_bom_reads_like_utf8(tmp_path):
    root = tmp_path / "in"
    categories(root, "换货")
    write_jsonl(root / "m.jsonl", [manifest_record("a"), manifest_record("b")], encoding="utf-16")
    report = import_classification(path=root, dataset_name="scenes")
    assert report.problems == [] and Sample.objects.count() == 2


def test_nul_characters_never_crash_or_roll_back_the_good_lines(tmp_path):
    root = tmp_path / "in"
    categories(root, "换货")
    escaped = manifest_record("a", image_info={"可见\u0000文字": ["申请\u0000换货"]})
    escaped["outputs"]["3"] = "简短\u0000\n类别：换货"
    raw = json.dumps(manifest_record("b"), ensure_ascii=False).replace("简短", "简\x00短")
    write_jsonl(root / "m.jsonl", [escaped, raw, manifest_record("c\u0000")])
    report = import_classification(path=root, dataset_name="scenes")
    assert report.problems == []
    assert {n.location for n in report.notes} >= {"m.jsonl:1", "m.jsonl:2", "m.jsonl:3"}
    assert set(Sample.objects.values_list("external_id", flat=True)) == {"a", "b", "c"}
    a = Sample.objects.get(external_id="a")
    assert a.image_info == {"可见文字": ["申请换货"]} and a.reasonings.get(mode=3).output == "简短\n类别：换货"


def test_every_import_command_exits_non_zero_when_it_stored_nothing(tmp_path):
    root = tmp_path / "in"
    categories(root, "换货")
    write_jsonl(root / "m.jsonl", ["{not json", {"label": "换货"}])
    with pytest.raises(CommandError):
        call_command("import_classification", str(root), "--dataset", "scenes")
    Dataset.objects.create(name="scenes")
    write_comma_lines(tmp_path / "info" / "0.json", [{"id": "nobody", "output": "换货", "picture2text": "x"}])
    with pytest.raises(CommandError):
        call_command("import_info_extra", "--dataset", "scenes", str(tmp_path / "info"))
    write_jsonl(tmp_path / "sources.jsonl", ["{broken", {"no": "image"}])
    with pytest.raises(CommandError):
        call_command("import_sources", str(tmp_path / "sources.jsonl"))
    write_jsonl(tmp_path / "feedback.jsonl", ["{broken"])
    with pytest.raises(CommandError):
        call_command("import_feedback", "--feedback-file", str(tmp_path / "feedback.jsonl"),
                     "--output-dir", str(tmp_path / "fb-out"))


# --------------------------------------------------------------------------- bounded field sizes (#17)
def test_oversized_records_and_fields_are_refused_per_line_with_the_limit_named(tmp_path, settings):
    settings.IMPORT_MAX_RECORD_CHARS = 200_000
    settings.IMPORT_MAX_TEXT_CHARS = 5_000
    root = tmp_path / "in"
    categories(root, "换货")
    huge = manifest_record("huge")
    huge["outputs"]["1"] = "长" * 300_000
    long_output = manifest_record("long")
    long_output["outputs"]["3"] = "字" * 6_000
    long_id = manifest_record("x" * 300)
    write_jsonl(root / "m.jsonl", [manifest_record("ok"), huge, long_output, long_id])
    report = import_classification(path=root, dataset_name="scenes")
    problems = {p.location: p.message for p in report.problems}
    assert list(problems) == ["m.jsonl:2", "m.jsonl:3", "m.jsonl:4"]
    assert "IMPORT_MAX_RECORD_CHARS" in problems["m.jsonl:2"]
    assert "IMPORT_MAX_TEXT_CHARS" in problems["m.jsonl:3"]
    assert "255" in problems["m.jsonl:4"]
    assert list(Sample.objects.values_list("external_id", flat=True)) == ["ok"]


def test_the_processes_read_a_staging_file_whose_folder_has_any_name(tmp_path, media_root, settings,
                                                                      monkeypatch):
    """The batches' processes open the import's staging file themselves, by a file URI: a folder
    with CJK, a space, `#` or `?` in its name is the folder it names."""
    from review.importing import importer

    root = tmp_path / "in"
    categories(root, "换货")
    for sid in ("a", "b", "c"):
        png(root / "images" / f"{sid}.png", "red")
    write_jsonl(root / "m.jsonl", [manifest_record(sid, image=f"images/{sid}.png")
                                   for sid in ("a", "b", "c")])
    settings.IMPORT_STAGING_ROOT = str(tmp_path / "暂存 #1?x=y")
    monkeypatch.setattr(importer, "PROCESS_BATCHES_FROM", 1)
    assembled = []
    watch_batch_processes(monkeypatch, assembled.append)
    report = import_classification(path=root, dataset_name="scenes")
    assert report.problems == [] and report.samples_imported == 3
    assert sorted(entry.external_id for part in assembled for entry in part.entries) == ["a", "b", "c"]
    assert all((media_root / s.image).is_file() for s in Sample.objects.all())


# --------------------------------------------------------------------------- the whole folder, every shape
def test_files_read_by_processes_import_exactly_as_files_read_here(tmp_path, media_root, settings, monkeypatch):
    """From PROCESS_READING_FROM_BYTES on, processes of their own parse and check the files (one
    over PROCESS_READING_MAX_BYTES is still streamed here): the same samples, outputs, problems and
    notes as reading every file here — a GBK file, another task's records, a broken record included."""
    from review.importing import importer

    team = build_team_train(tmp_path)
    write_array(team.root / "reasonbyQwen72b_model1" / "换货" / "more.json",
                [{"id": "", "output": "没有编号\n类别：换货"}, {"id": "x-1", "output": 5}])
    train = team.root / "train.json"

    def imported(dataset_name):
        report = import_classification(path=team.root, dataset_name=dataset_name, image_root=team.image_root,
                                       encoding="gbk", create_classes=True)
        samples = sorted(Sample.objects.filter(dataset__name=dataset_name).values_list(
            "external_id", "label__name", "description", "image_info"))
        outputs = sorted(Reasoning.objects.filter(sample__dataset__name=dataset_name).values_list(
            "sample__external_id", "mode", "output", "is_correct"))
        findings = [(p.location, p.message) for p in report.problems], [(n.location, n.message) for n in report.notes]
        return report.records_read, samples, outputs, findings

    monkeypatch.setattr(importer, "PROCESS_READING_FROM_BYTES", 0)
    monkeypatch.setattr(importer, "PROCESS_READING_MAX_BYTES", train.stat().st_size - 1)  # train.json: read here
    read = []
    original = importer.worker_processes

    def spied(*args, **kwargs):
        processes = original(*args, **kwargs)
        submit = processes.submit
        processes.submit = lambda fn, root, file, *rest: read.append(file.rel) or submit(fn, root, file, *rest)
        return processes

    monkeypatch.setattr(importer, "worker_processes", spied)
    by_processes = imported("by-processes")
    assert len(read) > 5 and "train.json" not in read and "reasonbyQwen72b_model1/换货/more.json" in read
    assert len(by_processes[3][0]) == 2  # the two broken records, with their file and position

    settings.IMPORT_PROCESSES = 0
    read.clear()
    here = imported("here")
    assert read == []
    assert by_processes == here


def test_the_teams_folder_in_every_shape_imports_with_the_expected_counts(tmp_path, media_root):
    team = build_team_train(tmp_path)
    # NUL characters in one output; the GBK file needs --encoding.
    mode3 = team.root / "reasonbyQwen72b_model3" / "退款页面" / team_file_name(REFUND)
    mode3.write_text(mode3.read_text(encoding="utf-8").replace("r-3 的截图", "r-3 的\\u0000截图"), encoding="utf-8")

    report = import_classification(path=team.root, dataset_name="team", image_root=team.image_root,
                                   encoding="gbk", create_classes=True)
    assert report.problems == []
    assert sorted(report.classes_created) == sorted([EXCHANGE, REFUND, ORDER_FAILED])
    dataset = Dataset.objects.get(name="team")
    assert dataset.categories.count() == 3  # no save_train_…, no shortened duplicates
    samples = {s.external_id: s for s in Sample.objects.filter(dataset=dataset).select_related("label")}
    assert set(samples) == {s.id for s in team.samples} | {REFUSED_ID}
    for expected in team.samples:
        sample = samples[expected.id]
        assert sample.label.name == expected.label, expected.id
        assert sample.description == f"{expected.id} 的截图：页面顶部是标题栏。"
        marks = dict(sample.reasonings.values_list("mode", "is_correct"))
        assert marks == {m: expected.predicted.get(m, expected.label) == expected.label for m in (1, 2, 3)}
    assert not samples[REFUSED_ID].reasonings.exists() and samples[REFUSED_ID].label.name == EXCHANGE
    assert Reasoning.objects.filter(sample__dataset=dataset).count() == 3 * len(team.samples)
    assert len({s.image for s in samples.values()}) == len(samples)  # colliding ids, distinct files
    assert "\x00" not in samples["r-3"].reasonings.get(mode=3).output

    # Importing the same folder again changes nothing.
    again = import_classification(path=team.root, dataset_name="team", image_root=team.image_root, encoding="gbk")
    assert (again.saved.samples_created, again.saved.samples_updated,
            again.saved.reasonings_created, again.saved.reasonings_updated) == (0, 0, 0, 0)


def test_batches_assembled_in_processes_import_as_when_assembled_here(tmp_path, media_root, settings, monkeypatch):
    """From PROCESS_BATCHES_FROM samples on, the import's processes assemble each batch (its staged
    records merged, every class chosen, repeats and misfiled records reported) a few samples at a
    time: the samples (written in the same order), outputs, images and every problem and note are
    those of an import that assembles here, in the same order."""
    from review.importing import importer

    team = build_team_train(tmp_path / "t", gbk_class=None)
    # A repeat of 样本1's mode 3 filed under another class, and a sample only that file names.
    write_array(team.root / "reasonbyQwen72b_model3" / "退款页面" / "save_train_extra.json", [
        {"id": "样本1", "image": [team.image_paths["样本1"]], "output": "重复\n类别：退款页面"},
        {"id": "only-3", "image": ["E:\\elsewhere\\missing.png"], "output": "分析\n类别：退款页面"},
    ])
    submitted = []
    original = importer.image_store_processes

    def counted(*args, **kwargs):  # runs and batches left in flight together, as in a real import
        processes = original(*args, **kwargs)
        submit = processes.submit
        processes.submit = (lambda fn, first, last, **kw:
                            submitted.append((first, last)) or submit(fn, first, last, **kw))
        return processes

    monkeypatch.setattr(importer, "image_store_processes", counted)
    monkeypatch.setattr(importer, "PROCESS_BATCHES_FROM", 1)
    monkeypatch.setattr(importer, "PROCESS_CHUNK", 2)  # a batch's samples in runs of two …
    settings.IMPORT_BATCH_SAMPLES = 3  # … and several batches, two prepared ahead

    def imported(dataset_name):
        report = import_classification(path=team.root, dataset_name=dataset_name, image_root=team.image_root,
                                       create_classes=True)
        samples = {s.external_id: (s.label.name, s.description, s.provenance, (media_root / s.image).read_bytes(),
                                   {r.mode: r.output for r in s.reasonings.all()})
                   for s in Sample.objects.filter(dataset__name=dataset_name).select_related("label")}
        order = list(Sample.objects.filter(dataset__name=dataset_name).order_by("pk")
                     .values_list("external_id", flat=True))
        return ([(p.location, p.message) for p in report.problems], [(n.location, n.message) for n in report.notes],
                samples, order)

    in_processes = imported("by-processes")
    assert len(submitted) > 2  # several runs of samples went to the processes
    settings.IMPORT_PROCESSES = 0
    submitted.clear()
    here = imported("here")
    assert submitted == []
    assert in_processes == here
    problems, _notes, samples, _order = here
    assert "only-3" not in samples and len(samples) == len(team.samples) + 1  # + the refused id's sample
    assert any("样本1：模式3已在" in message for _, message in problems)
    assert any("only-3" in message and "missing.png" in message for _, message in problems)
