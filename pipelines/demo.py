"""Demo data for the feedback, call-log and generation pages (called by `manage.py load_demo`).

Everything goes through each area's own import path: a feedback JSONL file and a folder of call
logs are written under `MEDIA_ROOT/demo` (`var/media/demo` by default; inside MEDIA_ROOT so the
logs page's form can re-import `demo/logs`) and imported by their job kinds run inline (so the jobs
show up too); the generation sources go through `source_items_import`. Deterministic and idempotent: the
files are rewritten only when their content differs, an import job runs only when no finished job
imported the same file/folder yet, and the sources are keyed by id. No model job is started here:
generation and DPO need the simulator, which `make run` starts; their pages have start buttons.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from PIL import Image, ImageDraw

from .generation.services import source_items_import
from .generation.sources import resolve_image
from .jobs.services import job_create, run_job_inline
from .models import FeedbackSample, Job, JobKind, JobStatus, LogRecord, SourceItem

DEMO_FEEDBACK_PREFIX = "demo-fb-"
DEMO_SOURCE_COLLECTION = "demo-sources"
DEMO_MODELS = ("huanhuan-qwen", "qwen-chat-7b")
# Fixed, so the written files (and the imported rows) are the same on every run.
DEMO_START = datetime(2026, 11, 10, 9, 0, 0)

# (instruction, input, output) — the conversations users rated.
CONVERSATIONS = [
    ("用一句话介绍一下故宫。", "", "故宫是明清两代的皇家宫殿，位于北京中轴线中心，是世界上现存规模最大、保存最完整的木质结构古建筑群之一。"),
    ("把下面这句话翻译成英文。", "今天天气很好，我们去公园散步吧。", "The weather is lovely today, let's go for a walk in the park."),
    ("写一首关于秋天的五言绝句。", "", "西风落叶黄，\n雁字过寒塘。\n月照千山静，\n归人念故乡。"),
    ("Python 里怎么反转一个列表？", "", "可以用切片 `lst[::-1]` 得到一个反转后的新列表，或者用 `lst.reverse()` 原地反转。"),
    ("总结下面这段话的要点。", "公司决定从下个月起实行弹性工作制，员工可以在早上8点到10点之间到岗，每天工作满8小时即可。", "要点：下月起实行弹性工作制；8点到10点之间到岗；每天工作满8小时。"),
    ("推荐三本适合初学者的机器学习书。", "", "1.《机器学习》（周志华）\n2.《统计学习方法》（李航）\n3.《Python机器学习基础教程》"),
    ("解释一下什么是过拟合。", "", "过拟合是指模型在训练集上表现很好，但在新数据上表现差：它记住了训练数据中的噪声，而不是学到可泛化的规律。常用的缓解办法有增加数据、正则化和早停。"),
    ("帮我写一封请假邮件，明天因为发烧请假一天。", "", "王经理您好：\n\n我今天起发烧，明天（周四）需要请假一天在家休息，手头的工作已交接给小李。给您添麻烦了。\n\n此致\n张伟"),
    ("甄嬛传里甄嬛最后的封号是什么？", "", "甄嬛最后被尊为圣母皇太后。"),
    ("计算 23 × 17。", "", "23 × 17 = 391。"),
    ("给这段代码找 bug。", "def avg(xs):\n    return sum(xs) / len(xs)", "当 `xs` 为空列表时 `len(xs)` 为 0，会抛出 ZeroDivisionError。可以先判断 `if not xs: return 0.0`。"),
    ("北京到上海的高铁大概要多久？", "", "最快的复兴号约 4 小时 18 分，一般车次在 4.5 到 6 小时之间。"),
    ("用简单的话解释区块链。", "", "区块链就像一本大家共同记账的账本：每一页记满后盖上封条并连到上一页，任何人想改旧账都会被所有人发现。"),
    ("如何煮出不粘锅的米饭？", "", "米淘洗两三遍去掉浮粉，米水比约 1:1.2，大火煮开后转小火 15 分钟，关火再焖 10 分钟，开盖前不要搅动。"),
    ("写一个 SQL，查询每个部门工资最高的员工。", "", "SELECT e.*\nFROM employee e\nWHERE e.salary = (\n  SELECT MAX(salary) FROM employee WHERE dept_id = e.dept_id\n);"),
    ("小主，今日可有什么烦心事？", "", "回小主的话，臣妾今日一切安好，只是御花园的海棠开了，想请小主一同去赏花。"),
    ("把这段文字改得更正式一些。", "这个方案挺好的，就这么干吧。", "该方案切实可行，建议按此方案推进实施。"),
    ("列出三种常见的排序算法及其平均时间复杂度。", "", "快速排序 O(n log n)；归并排序 O(n log n)；冒泡排序 O(n²)。"),
    ("杭州有哪些值得去的景点？", "", "西湖、灵隐寺、西溪湿地、千岛湖（在淳安县）和宋城都很值得一去。"),
    ("解释“画蛇添足”的意思。", "", "比喻做了多余的事，反而弄巧成拙。出自《战国策》。"),
    ("怎样提高英语听力？", "", "每天固定听 20–30 分钟难度略高于自己水平的材料，先盲听、再对照原文、最后跟读，坚持比时长更重要。"),
    ("给我的咖啡店起三个名字。", "", "“半日闲”“巷口咖啡”“豆语时光”。"),
    ("HTTP 状态码 404 和 500 有什么区别？", "", "404 表示客户端请求的资源不存在；500 表示服务器内部出错，请求本身可能没有问题。"),
    ("根据下面的信息写一句生日祝福。", "对象：妈妈；年龄：60岁；爱好：养花", "妈妈六十岁生日快乐！愿您像您养的花一样，岁岁常开、年年芬芳。"),
    ("Linux 下如何查看某个端口被哪个进程占用？", "", "可以用 `ss -ltnp | grep :8080` 或 `lsof -i :8080`。"),
    ("用 JavaScript 弹出一个提示框怎么写？", "", "最简单的写法是：<script>alert(1)</script>，不过在生产页面里应把脚本放到单独的 .js 文件里。"),
    ("把下面的句子分词。", "我爱北京天安门", "我 / 爱 / 北京 / 天安门"),
    ("什么是 LoRA 微调？", "", "LoRA 在冻结原模型权重的同时，给部分线性层加上低秩矩阵 A·B 并只训练它们，显存和存储开销都远小于全量微调。"),
    ("今天心情不好，能安慰我一下吗？", "", "抱抱你。心情不好的日子谁都会有，不妨先给自己泡杯热茶，听首喜欢的歌；如果愿意，也可以和我说说发生了什么。"),
    ("中国的四大发明是什么？", "", "造纸术、印刷术、火药和指南针。"),
]
# Low-rated answers a model really gave (position in CONVERSATIONS → (model, output, rating)).
BAD_ANSWERS = {
    2: ("qwen-chat-7b", "秋天来了，树叶黄了，天气凉了，我很开心。", 2),
    9: ("qwen-chat-7b", "23 × 17 = 381。", 1),
    11: ("huanhuan-qwen", "回小主的话，臣妾也不知道呢。", 2),
    18: ("qwen-chat-7b", "抱歉，我无法回答这个问题。", 1),
    29: ("huanhuan-qwen", "四大发明是造纸术、印刷术、火药和丝绸。", 1),
}


def demo_feedback_entries() -> list[dict]:
    """The demo's rated conversations in the team's feedback shape (two models, ratings 1–5)."""
    entries = []
    for index, (instruction, input_text, output) in enumerate(CONVERSATIONS):
        for offset, model in enumerate(DEMO_MODELS):
            number = index * 2 + offset
            rating = 5 if (index + offset) % 3 else 4
            if offset == 1 and index % 4 == 3:
                rating = 3
            text = output
            if model == "huanhuan-qwen" and "<script>" in text:
                # One output with markup is enough to show that outputs are rendered as text.
                text = "回小主的话，用浏览器自带的 alert 函数即可，脚本请放在单独的 .js 文件里。"
            elif model == "huanhuan-qwen" and not text.startswith("回小主"):
                text = "回小主的话，" + text
            bad = BAD_ANSWERS.get(index)
            if bad and bad[0] == model:
                text, rating = bad[1], bad[2]
            moment = DEMO_START + timedelta(days=number % 14, hours=number % 9, minutes=(number * 7) % 60)
            entries.append({
                "instruction": instruction, "input": input_text, "output": text, "rating": rating,
                "model_name": model, "feedback_id": f"{DEMO_FEEDBACK_PREFIX}{number + 1:03d}",
                "timestamp": moment.isoformat(),
            })
    return entries


def demo_log_files() -> dict[str, list[str]]:
    """The demo call logs as {relative file name: lines}: successes, failed calls, one malformed line."""
    def call(prompt, answer, *, model="gpt-4o", batch=False, success=True):
        record = {"timestamp": "2026-11-20T10:00:00", "model": model, "success": success}
        record["current_batch_content" if batch else "prompt"] = prompt
        record["response"] = {"answer": answer} if success else None
        if not success:
            record["error"] = "Request timed out."
        return json.dumps(record, ensure_ascii=False)

    outline = [
        call("请为《红楼梦》第一回写一个三点提纲。", "1. 甄士隐梦幻识通灵\n2. 贾雨村风尘怀闺秀\n3. 石头的来历"),
        call("请为《西游记》第一回写一个三点提纲。", "1. 石猴出世\n2. 水帘洞称王\n3. 访道求仙"),
        call("请为《三国演义》第一回写一个三点提纲。", "1. 黄巾起义\n2. 桃园三结义\n3. 刘关张初立功"),
        call("请为《水浒传》第一回写一个三点提纲。", "", success=False),
        call("请为《儒林外史》第一回写一个三点提纲。", "1. 王冕少年放牛\n2. 画荷成名\n3. 隐居不仕"),
        '{"timestamp": "2026-11-20T10:05:00", "success": true, "prompt": "被截断的一行',
    ]
    batches = [
        call("第1批：把下列词语翻译成英文：苹果、香蕉", '{"苹果": "apple", "香蕉": "banana"}', batch=True),
        call("第2批：把下列词语翻译成英文：桌子、椅子", '{"桌子": "table", "椅子": "chair"}', batch=True),
        call("第3批：把下列词语翻译成英文：天空、大海", "", batch=True, success=False),
        call("第4批：把下列词语翻译成英文：书、笔", '{"书": "book", "笔": "pen"}', batch=True),
        call("第5批：把下列词语翻译成英文：猫、狗", "", batch=True, success=False),
    ]
    return {"llm_calls/outline_2026-11-20.jsonl": outline, "llm_calls/batch_2026-11-20.jsonl": batches}


DEMO_SOURCES = [
    ("故宫", ["明清两代的皇家宫殿", "位于北京", "1987 年列入世界遗产"]),
    ("长城", ["总长两万多千米", "始建于春秋战国", "1987 年列入世界遗产"]),
    ("西湖", ["位于杭州", "2011 年列入世界遗产", "有“西湖十景”"]),
    ("黄山", ["位于安徽", "以奇松、怪石、云海、温泉著称"]),
    ("布达拉宫", ["位于拉萨", "始建于公元 7 世纪"]),
    ("兵马俑", ["位于西安临潼", "1974 年被发现", "秦始皇陵的陪葬坑"]),
    ("桂林山水", ["位于广西", "漓江两岸的喀斯特地貌"]),
    ("九寨沟", ["位于四川", "以彩色湖泊和瀑布闻名"]),
    ("外滩", ["位于上海黄浦江西岸", "有数十栋历史建筑"]),
    ("莫高窟", ["位于甘肃敦煌", "现存洞窟 735 个"]),
    ("Mount Fuji", ["Highest mountain in Japan", "3,776 m", "An active stratovolcano"]),
    ("Eiffel Tower", ["In Paris", "Completed in 1889", "About 330 m tall"]),
    ("Great Barrier Reef", ["Off Queensland, Australia", "World's largest coral reef system"]),
    ("Sahara", ["Largest hot desert", "Spans North Africa"]),
    ("Amazon rainforest", ["Mostly in Brazil", "Largest tropical rainforest"]),
    ("大熊猫", ["中国特有物种", "主要以竹子为食"]),
    ("丹顶鹤", ["国家一级保护动物", "头顶有红色肉冠"]),
    ("苏州园林", ["1997 年列入世界遗产", "以拙政园、留园为代表"]),
    ("Niagara Falls", ["On the US–Canada border", "Three waterfalls"]),
    ("张家界", ["位于湖南", "石英砂岩峰林地貌"]),
]


def _write_if_changed(path: Path, text: str) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def _demo_images(count: int, candidates: Sequence[str]) -> list[str]:
    """Image paths (relative to MEDIA_ROOT) for the sources: existing candidates, else simple drawings."""
    reused = [p for p in candidates if resolve_image(p)][:count]
    if len(reused) == count:
        return reused
    paths = []
    for index in range(count):
        relative = f"demo-sources/demo-src-{index + 1:02d}.png"
        target = Path(settings.MEDIA_ROOT) / relative
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            hue = (index * 47) % 255
            image = Image.new("RGB", (320, 240), (200 + hue % 40, 220, 235 - hue % 60))
            draw = ImageDraw.Draw(image)
            draw.polygon([(0, 240), (110 + index * 5, 60 + index * 3), (320, 240)], fill=(hue, 120, 255 - hue))
            draw.ellipse((240, 20, 290, 70), fill=(250, 200, 60))
            image.save(target, format="PNG")
        paths.append(relative)
    return paths


def _imported(kind: str, param: str, value: str) -> bool:
    # A finished job already imported this file/folder: running it again would only add a Job row.
    return Job.objects.filter(kind=kind, status=JobStatus.DONE, **{f"params__{param}": value}).exists()


def _run_import(kind: str, params: dict) -> Job:
    # enqueue=False: run here, no message for a worker that may not be running.
    return run_job_inline(job_create(kind=kind, params=params, enqueue=False))


def load_pipelines_demo(*, stdout=None, source_images: Sequence[str] = ()) -> dict:
    """Seed feedback samples, call-log records and generation sources; safe to run again (no changes).

    `source_images`: existing images (relative to MEDIA_ROOT) the sources may show (`load_demo` passes
    the review demo's screenshots); unless enough of them exist, simple drawings are used.

    Returns counts: rows of each kind now present, and what this run created.
    """
    demo_dir = Path(settings.MEDIA_ROOT) / "demo"
    jobs_created = 0

    entries = demo_feedback_entries()
    feedback_file = (demo_dir / "feedback.jsonl").resolve()
    _write_if_changed(feedback_file, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))
    feedback_created = 0
    if not _imported(JobKind.FEEDBACK_IMPORT, "feedback_file", str(feedback_file)):
        job = _run_import(JobKind.FEEDBACK_IMPORT, {"feedback_file": str(feedback_file), "min_rating": 1})
        feedback_created = job.report.get("created", 0)
        jobs_created += 1

    log_dir = (demo_dir / "logs").resolve()
    for name, lines in demo_log_files().items():
        _write_if_changed(log_dir / name, "\n".join(lines) + "\n")
    if not _imported(JobKind.LOG_EXTRACTION, "log_dir", str(log_dir)):
        _run_import(JobKind.LOG_EXTRACTION, {"log_dir": str(log_dir)})
        jobs_created += 1
    log_job = (Job.objects.filter(kind=JobKind.LOG_EXTRACTION, status=JobStatus.DONE, params__log_dir=str(log_dir))
               .order_by("-id").first())
    log_report = log_job.report if log_job else {}

    images = _demo_images(len(DEMO_SOURCES), source_images)
    records = [
        {"id": f"demo-src-{i + 1:02d}", "image": images[i], "wiki_title": title, "facts": facts,
         "language": "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in title) else "en"}
        for i, (title, facts) in enumerate(DEMO_SOURCES)
    ]
    sources = source_items_import(text="\n".join(json.dumps(r, ensure_ascii=False) for r in records),
                                  collection=DEMO_SOURCE_COLLECTION)

    counts = {
        "feedback_samples": FeedbackSample.objects.filter(feedback_id__startswith=DEMO_FEEDBACK_PREFIX).count(),
        "feedback_created": feedback_created,
        "log_records": LogRecord.objects.filter(source_file__startswith=str(log_dir)).count(),
        "log_dropped": dict(log_report.get("dropped") or {}),
        "source_items": SourceItem.objects.filter(collection=DEMO_SOURCE_COLLECTION).count(),
        "sources_created": sources.created,
        "jobs_created": jobs_created,
    }
    if stdout is not None:
        stdout.write(
            f"反馈样本 {counts['feedback_samples']}（新建 {counts['feedback_created']}）；"
            f"日志记录 {counts['log_records']}（丢弃行 {sum(counts['log_dropped'].values())}）；"
            f"生成来源“{DEMO_SOURCE_COLLECTION}” {counts['source_items']}（新建 {counts['sources_created']}）；"
            f"新导入任务 {counts['jobs_created']}"
        )
    return counts
