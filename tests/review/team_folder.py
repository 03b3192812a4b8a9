"""Builders for folders shaped the way the team's scripts write them (seed 004).

- `reasonbyQwen72b_model{1,2,3}/`: one JSON array per class, named like their batch script's output
  `save_train_<class>.json` (spaces and parentheses in the class name turned into `_`), either inside a
  class folder whose name was shortened by hand or directly in the mode folder;
- records `{"id", "image": [path], "output"}` with absolute Windows paths from the team's machine;
- `info_ectra/*.json`: `json.dumps(record) + ",\\n"` per line (a JSON array without its brackets),
  records `{"id", "image": [...], "output": <label>, "picture2text": <description>}`;
- `train.json`: the labels, `{"id", "instruction", "image": [...], "output": <label>}`.
"""
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

WINDOWS_PREFIX = "E:\\天池比赛\\tianchi\\train\\images\\"
SCENE_INSTRUCTION = "现在,请你对消费者上传的图片进行分类。你只需要回答图片分类结果"


def png(path: Path, color) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 12), color).save(path, format="PNG")
    return path


def team_file_name(class_name: str) -> str:
    """What `call_classreason.sh` makes of a class name: `save_train_<class>.json`, spaces and
    parentheses turned into `_` (its `sed 's/[[:space:]]/_/g; s/(/_/g; s/)/_/g'`)."""
    return "save_train_" + re.sub(r"[\s()]", "_", class_name) + ".json"


def reasoning(mode: int, predicted: str, sample_id: str) -> str:
    text = f"观察：样本 {sample_id} 的截图（模式{mode}）。"
    if mode == 1:
        text += "用户在咨询售后问题，页面元素较多，需要仔细辨认。"
    return text + f"\n类别：{predicted}"


@dataclass
class TeamSample:
    id: str
    label: str  # the full class name, as train.json has it
    color: tuple
    predicted: dict = field(default_factory=dict)  # mode → predicted class (default: the label)
    image_file: str = ""  # file name under images/ (default: derived from the index)

    def output(self, mode: int) -> str:
        return reasoning(mode, self.predicted.get(mode, self.label), self.id)


def write_array(path: Path, records: list, *, indent=None, encoding="utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, ensure_ascii=False, indent=indent), encoding=encoding)


def write_comma_lines(path: Path, records: list) -> None:
    """The info-extraction script's way: `json.dumps(record) + ",\\n"` per record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + ",\n")


REFUSED_ID = "9e2a1ebe-87c3-4547-b405-b592aabfdab-1384"
# Full names (train.json) → the class folder name as the team shortened it by hand.
TEAM_CLASSES = {
    "换货页面": "换货",
    "退款页面": "退款页面",
    "下单过程中出现异常 (显示购买失败浮窗)": "下单过程中出现异常",
}
EXCHANGE, REFUND, ORDER_FAILED = TEAM_CLASSES


def team_samples() -> list[TeamSample]:
    """Eight samples with reasoning in every mode; ids that differ only in non-ASCII or punctuation."""
    return [
        TeamSample("9f1c2d3e-1001", EXCHANGE, (200, 30, 30)),
        TeamSample("样本1", EXCHANGE, (30, 200, 30)),
        TeamSample("图片1", EXCHANGE, (30, 30, 200), predicted={2: REFUND, 3: REFUND}),
        TeamSample("a/b", REFUND, (200, 200, 30)),
        TeamSample("a_b", REFUND, (30, 200, 200)),
        TeamSample("r-3", REFUND, (200, 30, 200)),
        TeamSample("d-1", ORDER_FAILED, (90, 90, 90)),
        TeamSample("d-2", ORDER_FAILED, (160, 160, 160), predicted={2: REFUND}),
    ]


@dataclass
class TeamFolder:
    root: Path  # the `train/` folder
    image_root: Path  # where the images are on this machine
    samples: list[TeamSample]
    image_paths: dict  # sample id → the absolute Windows path written in the records


def build_team_train(base: Path, *, gbk_class: str | None = REFUND) -> TeamFolder:
    """A `train/` folder in every shape the team's scripts write, images elsewhere on disk."""
    root, image_root = base / "train", base / "local" / "tianchi"
    samples = team_samples()
    paths = {}
    for index, sample in enumerate(samples + [TeamSample(REFUSED_ID, EXCHANGE, (10, 10, 10))]):
        name = f"img_{index:03d}.png"
        png(image_root / "train" / "images" / name, sample.color)
        paths[sample.id] = WINDOWS_PREFIX + name
    by_class: dict[str, list[TeamSample]] = {}
    for sample in samples:
        by_class.setdefault(sample.label, []).append(sample)

    def record(sample, mode):
        return {"id": sample.id, "image": [paths[sample.id]], "output": sample.output(mode)}

    for full, folder in TEAM_CLASSES.items():
        members = by_class[full]
        # Mode 1: class folder (shortened) holding save_train_<full>.json, one line.
        write_array(root / "reasonbyQwen72b_model1" / folder / team_file_name(full), [record(s, 1) for s in members])
        # Mode 2: save_train_<full>.json directly in the mode folder, pretty-printed; one class in GBK.
        write_array(root / "reasonbyQwen72b_model2" / team_file_name(full), [record(s, 2) for s in members],
                    indent=4, encoding="gbk" if full == gbk_class else "utf-8")
        # Mode 3: class folder again, pretty-printed.
        write_array(root / "reasonbyQwen72b_model3" / folder / team_file_name(full), [record(s, 3) for s in members],
                    indent=4)
    everyone = samples + [TeamSample(REFUSED_ID, EXCHANGE, (10, 10, 10))]
    train = [{"id": s.id, "instruction": SCENE_INSTRUCTION, "image": [paths[s.id]], "output": s.label}
             for s in everyone]
    # train.json holds the other tasks of the competition too: not scene classes, not imported.
    train.append({"id": "dialog-77", "instruction": "判断用户意图", "image": [], "output": "反馈密封性不好"})
    write_array(root / "train.json", train, indent=4)
    write_comma_lines(root / "info_ectra" / "info_0.json", [
        {"id": s.id, "image": [paths[s.id]], "output": s.label, "picture2text": f"{s.id} 的截图：页面顶部是标题栏。"}
        for s in everyone
    ])
    return TeamFolder(root=root, image_root=image_root, samples=samples, image_paths=paths)
