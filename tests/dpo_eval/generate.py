"""Build the labelled DPO evaluation sets: `python tests/dpo_eval/generate.py` (deterministic, seed 15).

Writes, beside this script:

- `pairs.jsonl` — the evaluation set the benchmark (`make bench`, section dpo_checks) and the floor test
  (tests/pipelines/dpo/test_pair_checks_eval.py) measure the checks on.
- `templated_on_topic.jsonl` — 200 customer-service pairs whose rejects are mostly short, relevant,
  incomplete answers written from one answer template, each carrying its own prompt's order number and
  product (issue #15: the checks called every one of them boilerplate).

Every line: {"id", "kind", "lang", "prompt", "chosen", "rejected", "expected": [issues that must be
raised], "allowed": [issues that may also be raised without counting as a false alarm]} and, for
rejects cut at the token limit, "finish_reason": "length".

Kinds, and how each is made (the good and worse answers are hand-written: bank_zh.py, bank_en.py):

  good             the bank's own worse answer: shorter, vaguer, incomplete or wrong, on the same prompt;
                   some longer than the chosen one but padded and unhelpful
  good_partial     the chosen answer with half its list, or only its first sentence(s): incomplete
  good_templated   a customer-service reply from one template, filled with the prompt's order and product
  off_topic        the answer to an unrelated prompt (misaligned rows), or unrelated web text
  boilerplate      one text under many unrelated prompts: the seed's "这篇文章主要讨论了人工智能在…领域的应用",
                   its English twin, canned refusals, a shop's canned greeting, scraped footer text,
                   a degenerate self-introduction — with the small variations real generations have
  echo             the prompt (or its start) copied back: the simulator's `{prompt}[EOS]` case
                   ("<image>你是电商客服场景的图片分类。"), the whole prompt, the prompt twice, behind "好的，"
  identical        the chosen answer again: exactly, re-punctuated, re-spaced, one character changed
  truncated        the chosen answer cut mid-sentence: mid-word, after a comma, at the token limit,
                   inside <think> or a code block, trailing off with an ellipsis
  swapped          chosen and rejected the wrong way round: the fuller answer sits in "rejected"
  empty            nothing, whitespace, only reasoning, only an end-of-sequence token

Limits, stated rather than hidden: off-topic rejects are at least a sentence long (a two-word
unrelated answer cannot be told from a short wrong one without understanding it), and swapped
pairs are ones where the thinner answer is a part of the fuller one (a vague short answer swapped
with a precise long one is not visible to lexical checks).
"""
from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bank_en  # noqa: E402
import bank_holdout  # noqa: E402
import bank_zh  # noqa: E402

SEED = 15

# --------------------------------------------------------------------------- the bank
THINK = [
    ("图中的用户想做什么？<image>",
     "<think>截图是订单详情页，用户用红框圈出了“申请退款”按钮，旁边写着“不想要了”。</think>用户想申请退款，取消这笔订单。",
     "用户想看订单。"),
    ("小明有12个苹果，分给3个同学，每人几个？",
     "<think>12个苹果平均分给3个人，12 ÷ 3 = 4。</think>每人分到4个苹果。",
     "每人3个。"),
    ("A train travels 120 km in 1.5 hours. What is its average speed?",
     "<think>Average speed is distance divided by time: 120 / 1.5 = 80.</think>Its average speed is 80 km/h.",
     "About 100 km/h."),
]


def bank() -> list[dict]:
    items = []
    for lang, module in (("zh", bank_zh), ("en", bank_en)):
        for group in ("GENERAL", "COPY_TASKS", "SERVICE", "VERBOSE"):
            for prompt, chosen, worse in getattr(module, group):
                items.append({"lang": lang, "group": group.lower(), "prompt": prompt, "chosen": chosen, "worse": worse})
    for prompt, chosen, worse in bank_zh.CLASSIFY:
        items.append({"lang": "zh", "group": "classify", "prompt": prompt, "chosen": chosen, "worse": worse})
    for prompt, chosen, worse in THINK:
        lang = "en" if prompt.isascii() else "zh"
        items.append({"lang": lang, "group": "think", "prompt": prompt, "chosen": chosen, "worse": worse})
    return items


# --------------------------------------------------------------------------- templated customer service
PRODUCTS_ZH = [
    "蓝牙耳机", "电饭煲", "羽绒服", "运动鞋", "保温杯", "扫地机器人", "手机壳", "护眼台灯", "空气炸锅", "儿童书包",
    "机械键盘", "四件套", "行李箱", "护肤套装", "咖啡机", "电动牙刷", "瑜伽垫", "加湿器", "吹风机", "智能手表",
    "床垫", "电热水壶", "登山包", "投影仪", "婴儿推车", "榨汁机", "显示器", "电暖器", "猫砂盆", "茶具套装",
]
# issue kind → (customer messages, the agent's full answer, the topic phrase the template reply names)
ISSUES_ZH = {
    "未收到货": (
        ["订单{order}的{product}显示已签收，可是我根本没收到，怎么回事？", "我买的{product}物流说送到了，但我家里没人收过，订单号{order}。",
         "{product}显示签收了但我没拿到，单号{order}，麻烦查一下。"],
        "您好，非常抱歉！我查到订单{order}的{product}被放在了{place}，取件码已重新发到您手机。如果那里也没有，请回复我，"
        "我们会立即联系快递核实并为您补发。",
    ),
    "商品破损": (
        ["刚收到的{product}外包装压坏了，东西也有裂痕，订单号{order}，怎么处理？", "订单{order}的{product}到手就是坏的，能换吗？",
         "{product}收到时磕坏了一角，订单{order}。"],
        "很抱歉{product}在运输中受损了！请拍一张破损处的照片发给我，我们会为订单{order}免费补发一件新的，破损的那件不用寄回。",
    ),
    "换货": (
        ["订单{order}买的{product}{reason}，想换一个，可以吗？", "{product}{reason}，订单{order}，能不能换？",
         "你好，我想把订单{order}里的{product}换一下，{reason}。"],
        "可以的！订单{order}还在7天无理由期内，请在订单详情页点“申请售后—换货”，选好新的款式提交即可，来回运费由运费险承担，"
        "{product}寄回后{days}天内给您发出新的。",
    ),
    "退款进度": (
        ["{product}退款申请好几天了还没到账，订单{order}。", "订单{order}退的{product}，钱什么时候退回来？",
         "我的{product}已经退回去{days}天了，退款还没到，单号{order}。"],
        "您好，订单{order}的退款已于{date}审核通过，{amount}元原路退回到您的支付账户，一般3到7个工作日到账。"
        "如果超过时间还没收到，请联系我，我们提供退款凭证帮您向银行查询。",
    ),
    "发票": (
        ["订单{order}的{product}能开公司抬头的发票吗？", "买的{product}需要开专票，订单{order}，怎么操作？",
         "{product}的发票在哪里申请？订单号{order}。"],
        "可以开的。请在订单{order}详情页点“申请开票”，选择“企业”，填写公司名称和税号后提交，电子发票{days}个工作日内发到您的邮箱；"
        "需要增值税专用发票的话请再上传一般纳税人证明。",
    ),
    "催发货": (
        ["{order}这个订单的{product}什么时候发货？都{days}天了。", "订单{order}的{product}怎么还没发？", "我拍的{product}一直没发货，单号{order}，急用！"],
        "非常抱歉让您久等！订单{order}的{product}是预售款，页面写明付款后{days}天内发货。我已经为您提交了加急申请，"
        "仓库会优先处理，发出后会短信通知您。",
    ),
    "少发配件": (
        ["收到的{product}少了配件，订单{order}，帮我看看。", "订单{order}的{product}里没有说明书和充电线。", "{product}包装里缺东西，订单号{order}。"],
        "抱歉给您带来不便！请告诉我缺少的具体配件，或者拍一张包装内物品的照片，我核实后马上为订单{order}补寄，{days}天左右送到，"
        "运费由我们承担。",
    ),
    "发错货": (
        ["订单{order}发错颜色了，我买的是{color}的{product}。", "{product}收到的型号不对，订单{order}。", "我要的是{color}{product}，你们发成别的了，订单{order}。"],
        "非常抱歉发错了货！我已经为订单{order}登记了换货，快递员{days}天内上门取件，同时给您寄出{color}的{product}，"
        "两边同时进行，不用等退回再发。",
    ),
    "质量问题": (
        ["{product}用了两天就坏了，订单号是{order}。", "订单{order}的{product}{fault}，是不是质量有问题？", "买的{product}{fault}，单号{order}。"],
        "抱歉{product}出现了问题！它在一年保修期内，请先按说明书恢复出厂设置试一下；如果仍然{fault}，我们为订单{order}"
        "安排免费上门检修，或直接换新。",
    ),
    "使用咨询": (
        ["{product}怎么用？订单{order}刚到的。", "请问订单{order}的{product}第一次使用要注意什么？", "{product}收到了，不会设置，订单{order}。"],
        "您好！{product}第一次使用前请先完整充电或清洗一遍，再按说明书第3页的步骤设置。如果需要，我可以发一份视频教程给您；"
        "订单{order}享受30天内免费上门指导。",
    ),
}
PLACES = ["小区东门的快递柜", "门卫室", "楼下的驿站", "前台"]
REASONS = ["尺码大了", "颜色不喜欢", "尺寸不合适", "买错型号了"]
COLORS = ["黑色", "白色", "灰色", "蓝色", "粉色"]
FAULTS = ["开不了机", "有异响", "不加热", "充不进电"]
# The one answer template of the team's templated rejects: the order number and the topic filled in.
TEMPLATE_REPLY_ZH = ("您好，您反馈的订单{order}（{product}，{issue}）我们已经收到，售后专员会尽快为您核实处理，"
                     "请您耐心等待，感谢您的理解与支持！")
PREFIXES_ZH = ["", "", "你好，", "在吗？", "客服，", "您好，"]
SUFFIXES_ZH = ["", "", "谢谢", "急！", "？？"]


def _order(rng: random.Random) -> str:
    style = rng.random()
    if style < 0.6:
        return str(rng.randint(10**11, 10**12 - 1))
    if style < 0.85:
        return "DD" + str(rng.randint(10**9, 10**10 - 1))
    return str(rng.randint(10**17, 10**18 - 1))


def templated_service_zh(rng: random.Random) -> dict:
    product = rng.choice(PRODUCTS_ZH)
    issue = rng.choice(list(ISSUES_ZH))
    messages, answer = ISSUES_ZH[issue]
    slots = {
        "order": _order(rng), "product": product, "place": rng.choice(PLACES), "reason": rng.choice(REASONS),
        "color": rng.choice(COLORS), "fault": rng.choice(FAULTS), "days": rng.randint(2, 7),
        "date": f"{rng.randint(1, 12)}月{rng.randint(1, 28)}日", "amount": rng.randint(39, 2999),
    }
    message = rng.choice(messages).format(**slots)
    prompt = f"客户：{rng.choice(PREFIXES_ZH)}{message}{rng.choice(SUFFIXES_ZH)}"
    rejected = TEMPLATE_REPLY_ZH.format(order=slots["order"], product=product, issue=issue)
    return {"lang": "zh", "prompt": prompt, "chosen": answer.format(**slots), "rejected": rejected}


PRODUCTS_EN = ["blender", "desk lamp", "running shoes", "coffee grinder", "backpack", "phone case", "air fryer",
               "yoga mat", "electric kettle", "wireless mouse", "winter jacket", "water bottle", "smart watch", "pillow"]
ISSUES_EN = {
    "a damaged item": ("the {product} from order #{order} arrived with a cracked housing. What now?",
                       "I'm sorry the {product} arrived damaged! Please send a photo of the crack and I'll ship a replacement "
                       "for order #{order} today, free of charge — no need to return the broken one."),
    "a late delivery": ("order #{order} ({product}) was due three days ago and tracking hasn't moved.",
                        "Sorry for the wait! Tracking for order #{order} shows the {product} stuck at the regional hub. I've "
                        "opened a trace with the carrier and upgraded it to express; you'll get a new ETA by email within 24 hours."),
    "a refund": ("I returned the {product} (order #{order}) two weeks ago. Where's my refund?",
                 "Your return of the {product} was received on the 4th and the refund for order #{order} was issued the "
                 "same day. Card refunds take 5–10 business days to appear; if you don't see it by Friday, reply here and "
                 "I'll send the transaction reference to your bank."),
    "a wrong size": ("the {product} in order #{order} is the wrong size. Can I exchange it?",
                     "Of course! Order #{order} is within the 30-day window. Start an exchange under Orders > Return or "
                     "exchange, pick the new size, and print the prepaid label — the new {product} ships as soon as the "
                     "parcel is scanned."),
}
TEMPLATE_REPLY_EN = ("Hi, thanks for contacting us about {issue} with your {product} (order #{order}). We have "
                     "received your request and a member of our support team will get back to you as soon as possible. "
                     "Thank you for your patience!")


def templated_service_en(rng: random.Random) -> dict:
    product = rng.choice(PRODUCTS_EN)
    issue = rng.choice(list(ISSUES_EN))
    message, answer = ISSUES_EN[issue]
    order = str(rng.randint(10000, 99999))
    prompt = f"Customer: {rng.choice(['', 'Hi, ', 'Hello — '])}{message.format(product=product, order=order)}"
    prompt = prompt[:10] + prompt[10].upper() + prompt[11:] if prompt[10:11].islower() and prompt[9] == " " else prompt
    return {"lang": "en", "prompt": prompt, "chosen": answer.format(product=product, order=order),
            "rejected": TEMPLATE_REPLY_EN.format(issue=issue, product=product, order=order)}


# --------------------------------------------------------------------------- boilerplate kinds
FIELDS_ZH = ["医疗保健", "金融", "教育", "交通运输", "智能制造", "零售", "农业", "能源"]
FIELDS_EN = ["healthcare", "finance", "education", "transportation", "manufacturing", "retail"]
SHOPS = ["小米官方旗舰店", "优选家居专营店", "本店", "美的官方旗舰店", "潮流服饰店"]


def boilerplate_text(kind: str, rng: random.Random) -> str:
    if kind == "seed_ai_article":
        field = rng.choice(FIELDS_ZH)
        text = (f"这篇文章主要讨论了人工智能在{field}领域的应用，包括数据分析、智能决策和流程自动化等方面。"
                f"文章指出，人工智能技术正在深刻改变{field}行业的发展模式")
        return text + rng.choice(["……", "，但也面临数据安全和伦理方面的挑战。", "。"])
    if kind == "ai_article_en":
        field = rng.choice(FIELDS_EN)
        return (f"This article mainly discusses the application of artificial intelligence in {field}, including data "
                f"analysis, intelligent decision-making and process automation. It argues that AI is reshaping the {field} "
                f"industry{rng.choice(['.', ', while raising concerns about privacy and ethics.', '...'])}")
    if kind == "refusal_zh":
        return rng.choice([
            "抱歉，作为一个人工智能语言模型，我无法回答这个问题。如果您有其他问题，欢迎随时向我提问。",
            "抱歉，作为一个人工智能语言模型，我无法回答这个问题。如果您有其他问题，欢迎随时提问！",
            "很抱歉，作为一个人工智能语言模型，我无法回答这个问题。如有其他问题，欢迎随时向我提问。",
        ])
    if kind == "refusal_en":
        return rng.choice([
            "I'm sorry, but as an AI language model, I cannot help with that request. Is there anything else I can help you with?",
            "I'm sorry, but as an AI language model I can't help with that request. Is there anything else I can help with?",
            "Sorry, as an AI language model, I cannot help with this request. Is there anything else I can help you with?",
        ])
    if kind == "shop_greeting":
        return (f"亲，您好！欢迎光临{rng.choice(SHOPS)}，很高兴为您服务{rng.choice(['～', '！', '😊'])}"
                f"请问有什么可以帮到您的呢？{rng.choice(['', '本店所有商品均支持七天无理由退换货哦。'])}")
    if kind == "scraped_footer":
        return ("本文内容来源于网络，仅供学习交流使用，版权归原作者所有，如有侵权请联系删除。"
                + rng.choice(["更多精彩内容，欢迎关注我们的微信公众号！", "喜欢的话请点赞、收藏、转发三连支持一下！", ""]))
    if kind == "self_intro":
        sentence = rng.choice(["我是一个人工智能助手，我可以回答你的各种问题。", "我是一个人工智能助手，可以回答你的各种问题。"])
        return sentence * rng.randint(2, 3)
    raise ValueError(kind)


BOILERPLATE_KINDS = {  # kind → language of the prompts it is put under, members
    "seed_ai_article": ("zh", 12), "ai_article_en": ("en", 9), "refusal_zh": ("zh", 8), "refusal_en": ("en", 8),
    "shop_greeting": ("zh", 8), "scraped_footer": ("zh", 7), "self_intro": ("zh", 6),
}

OFF_TOPIC_TEXTS_ZH = [
    "据新华社报道，今年前三季度我国社会消费品零售总额同比增长6.8%，其中网上零售额增长超过一成，消费市场持续回暖。",
    "本公司长期招聘销售代表，底薪加提成，月入过万不是梦，有意者请携带简历到人力资源部面试。",
    "今天的天气晴转多云，最高气温28摄氏度，最低气温19摄氏度，东南风三到四级，适合户外活动。",
    "第一章 总则 第一条 为了规范公司员工的考勤管理，提高工作效率，根据国家有关法律法规，结合本公司实际情况，制定本制度。",
]
OFF_TOPIC_TEXTS_EN = [
    "The city council voted on Tuesday to extend the downtown bike lane network by twelve miles over the next two years.",
    "Preheat the oven to 180 °C. Cream the butter and sugar until pale, then beat in the eggs one at a time.",
    "Terms and conditions: this promotion is valid for new customers only and cannot be combined with other offers.",
]

# --------------------------------------------------------------------------- derived texts
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|(?<=\.)\s")
_LIST_LINE = re.compile(r"^\s*(?:\d+[.、)]|[-*•])\s*")


def sentences(text: str) -> list[str]:
    parts = [p for p in re.split(r"(?<=[。！？!?])|(?<=[.!?])\s+", text) if p and p.strip()]
    return [p.strip() if p.isascii() else p for p in parts]


def list_items(text: str) -> list[str] | None:
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) >= 3 and sum(bool(_LIST_LINE.match(line)) for line in lines) >= 3:
        return lines
    # An inline list: one sentence that is mostly "甲、乙、丙、丁".
    if text.count("。") <= 1 and text.rstrip("。").count("、") >= 3 and "，" not in text:
        return text.rstrip("。").split("、")
    return None


def partial(text: str) -> str | None:
    """An incomplete but finished answer: half of the list, or the first sentence(s)."""
    items = list_items(text)
    if items is not None:
        if "\n" in text:
            head = items[: max(1, len(items) // 2)]
            if not _LIST_LINE.match(items[0]):
                head = items[: max(2, len(items) // 2)]
            return "\n".join(head)
        # As the product's drop_list_items does: the sentence keeps its full stop.
        return "、".join(items[: max(2, len(items) // 2)]) + ("。" if text.endswith("。") else "")
    parts = sentences(text)
    if len(parts) >= 2:
        keep = max(1, len(parts) // 2)
        sep = " " if text.isascii() else ""
        return sep.join(parts[:keep])
    return None


def truncate_mid(text: str, rng: random.Random) -> str | None:
    """Cut inside a word or a run of CJK characters, 35–85 % in: how max_tokens cuts a generation."""
    candidates = [i for i in range(int(len(text) * 0.35), int(len(text) * 0.85))
                  if text[i - 1].isalnum() and text[i].isalnum()]
    if not candidates:
        return None
    return text[: rng.choice(candidates)]


def one_char_changed(text: str, rng: random.Random) -> str:
    positions = [i for i, ch in enumerate(text) if "\u4e00" <= ch <= "\u9fff" or ch.isalpha()]
    i = rng.choice(positions)
    replacement = rng.choice("的了是在和有") if "\u4e00" <= text[i] <= "\u9fff" else rng.choice("aeiou")
    return text[:i] + replacement + text[i + 1:]


def repunctuate(text: str) -> str:
    table = str.maketrans({"，": ",", "。": ".", "：": ":", "；": ";", "！": "!", "？": "?", "（": "(", "）": ")"})
    if text.isascii():
        return text.rstrip(".") if text.endswith(".") else text + "."
    return text.translate(table)


def respace(text: str) -> str:
    if "\n" in text:
        return text.replace("\n", " ")
    return "  " + text + "\n"


# --------------------------------------------------------------------------- the sets
def record(kind: str, item: dict, rejected: str, expected=(), allowed=(), **extra) -> dict:
    row = {"kind": kind, "lang": item["lang"], "prompt": item["prompt"], "chosen": item["chosen"], "rejected": rejected,
           "expected": list(expected), "allowed": list(allowed)}
    row.update(extra)
    return row


@dataclass
class Spec:
    """What one labelled set is made of: its bank, its template replies, its boilerplate and how many of each."""

    items: list[dict]
    templated: list[tuple[Callable[[random.Random], dict], int]]
    boilerplate: dict[str, tuple[str, int]]  # kind → (language of the prompts it sits under, members)
    boilerplate_text: Callable[[str, random.Random], str]
    off_topic_texts: dict[str, list[str]]
    echo_styles: tuple[str, ...]
    counts: dict[str, int]  # good_partial, off_topic, echo, identical, truncated, swapped


def echo_text(style: str, item: dict) -> str:
    prompt, en = item["prompt"], item["lang"] == "en"
    return {
        "verbatim": prompt,
        "repeated": f"{prompt} {prompt}" if en else prompt + prompt,
        "lead_in": ("Sure! " if en else "好的，") + prompt,
        "with_eos": prompt + "[EOS]",
        "prompt_start": prompt[: max(6, int(len(prompt) * 0.6))],
        "qa_template": f"Q: {prompt}\nA:" if en else f"问题：{prompt}\n回答：",
        "question_twice": f"{prompt} {prompt}?" if en else f"{prompt}？{prompt}？",
    }[style]


def build_set(rng: random.Random, spec: Spec) -> list[dict]:
    items = spec.items
    counts = spec.counts
    rows: list[dict] = []

    # good: every bank entry with its own worse answer
    for item in items:
        rows.append(record("good", item, item["worse"]))

    # good_partial: incomplete but finished answers
    for item in rng.sample(items, len(items)):
        text = partial(item["chosen"])
        if text and text != item["chosen"] and len([r for r in rows if r["kind"] == "good_partial"]) < counts["good_partial"]:
            rows.append(record("good_partial", item, text))

    # good_templated: the team's template replies
    for make, count in spec.templated:
        for _ in range(count):
            row = make(rng)
            rows.append(record("good_templated", row, row["rejected"]))

    # off_topic: answers of unrelated prompts (misaligned rows) and unrelated web text, a sentence or longer
    long_answers = {lang: [i for i in items if len(i["chosen"]) >= (30 if lang == "zh" else 60) and i["lang"] == lang]
                    for lang in ("zh", "en")}
    general = [i for i in items if i["group"] in ("general", "service", "copy_tasks")]
    used: set[str] = set()  # each unrelated text once: one recurring under many prompts is boilerplate
    for item in rng.sample(general, counts["off_topic"]):
        pool = [o for o in long_answers[item["lang"]]
                if o["prompt"] != item["prompt"] and o["group"] not in ("classify", "think") and o["chosen"] not in used]
        other = rng.choice(pool)
        used.add(other["chosen"])
        rows.append(record("off_topic", item, other["chosen"], ["off_topic"]))
    for lang, texts in spec.off_topic_texts.items():
        for item, text in zip(rng.sample([i for i in general if i["lang"] == lang], len(texts)), texts):
            rows.append(record("off_topic", item, text, ["off_topic"]))

    # boilerplate: each kind under unrelated prompts of its language
    for kind, (lang, count) in spec.boilerplate.items():
        prompts = [i for i in items if i["lang"] == lang and i["group"] in ("general", "service", "copy_tasks")]
        for item in rng.sample(prompts, count):
            text = spec.boilerplate_text(kind, rng)
            # The seed's text trails off ("……"): calling it cut off as well is fair.
            allowed = ["off_topic", "truncated"] if text.endswith(("……", "...")) else ["off_topic"]
            rows.append(record("boilerplate", item, text, ["boilerplate"], allowed, variant=kind))

    # echo: the prompt copied back
    for item in [i for i in items if i["group"] == "classify"][:5]:
        # The simulator's `{prompt}[EOS]` case: the start of the prompt, up to its first sentence end.
        first = item["prompt"][: item["prompt"].index("。") + 1]
        rows.append(record("echo", item, first, ["echo"], ["truncated"], variant="prompt_start"))
    long_prompts = [i for i in items if len(i["prompt"]) >= 8 and i["group"] in ("general", "service", "copy_tasks", "think")]
    for n, item in enumerate(rng.sample(long_prompts, counts["echo"])):
        style = spec.echo_styles[n % len(spec.echo_styles)]
        rows.append(record("echo", item, echo_text(style, item), ["echo"], ["truncated"], variant=style))

    # identical: the chosen answer again
    for n, item in enumerate(rng.sample([i for i in items if len(i["chosen"]) >= 4], counts["identical"])):
        style = n % 5
        chosen = item["chosen"]
        if style == 0:
            rejected, variant = chosen, "exact"
        elif style == 1:
            rejected, variant = repunctuate(chosen), "punctuation"
        elif style == 2:
            rejected, variant = respace(chosen), "whitespace"
        elif style == 3 and len(chosen) >= 40:
            rejected, variant = one_char_changed(chosen, rng), "one_char"
        else:
            # Lower case, or the final full stop / question mark dropped: still the same answer.
            rejected, variant = (chosen.lower() if chosen.isascii() else chosen.rstrip("。！？")), "case_or_stop"
        rows.append(record("identical", item, rejected, ["identical"], variant=variant))

    # truncated: cut mid-sentence
    long_items = [i for i in items if len(i["chosen"]) >= 30]
    for n, item in enumerate(rng.sample(long_items, counts["truncated"])):
        chosen = item["chosen"]
        style = n % 5
        extra = {}
        if item["group"] == "think":
            rejected, variant = chosen[: chosen.index("</think>") - 3], "inside_think"
        elif "```" in chosen and style < 3:
            rejected, variant = chosen[: chosen.index("```") + rng.randint(12, 30)], "inside_code"
        elif style == 1:
            commas = [m.end() for m in re.finditer(r"[，,、]", chosen) if 0.3 * len(chosen) < m.end() < 0.9 * len(chosen)]
            if not commas:
                rejected, variant = truncate_mid(chosen, rng), "mid_word"
            else:
                rejected, variant = chosen[: rng.choice(commas)], "after_comma"
        elif style == 2:
            rejected, variant = chosen[: int(len(chosen) * rng.uniform(0.4, 0.8))], "token_limit"
            extra["finish_reason"] = "length"
        elif style == 3:
            cut = truncate_mid(chosen, rng) or chosen[: len(chosen) // 2]
            rejected, variant = cut + ("..." if item["lang"] == "en" else "……"), "trailing_off"
        else:
            rejected, variant = truncate_mid(chosen, rng), "mid_word"
        if not rejected:
            continue
        rows.append(record("truncated", item, rejected, ["truncated"], variant=variant, **extra))

    # swapped: the fuller answer in "rejected"
    swappable = [i for i in items if len(i["chosen"]) >= 40 and partial(i["chosen"])]
    for item in rng.sample(swappable, min(counts["swapped"], len(swappable))):
        thin = partial(item["chosen"])
        rows.append({**record("swapped", item, item["chosen"], ["likely_swapped"]), "chosen": thin})

    # empty
    empties = ["", "   ", "\n\n", "<think>让我想一想。</think>", "[EOS]", "</s>", "<|im_end|>"]
    for item, rejected in zip(rng.sample(items, len(empties)), empties):
        rows.append(record("empty", item, rejected, ["empty"]))
    item = rng.choice(items)
    rows.append({**record("empty", item, item["worse"], ["empty"]), "chosen": " "})
    return rows


def dev_spec() -> Spec:
    return Spec(
        items=bank(),
        templated=[(templated_service_zh, 24), (templated_service_en, 16)],
        boilerplate=BOILERPLATE_KINDS,
        boilerplate_text=boilerplate_text,
        off_topic_texts={"zh": OFF_TOPIC_TEXTS_ZH, "en": OFF_TOPIC_TEXTS_EN},
        echo_styles=("verbatim", "repeated", "lead_in", "with_eos", "prompt_start"),
        counts={"good_partial": 18, "off_topic": 26, "echo": 26, "identical": 26, "truncated": 30, "swapped": 26},
    )



# --------------------------------------------------------------------------- the holdout set
# Written after the checks were tuned on pairs.jsonl, with other domains, boilerplate and templates;
# the benchmark prints it separately so the figures show how the checks do on data nobody tuned them to.
HOLDOUT_IMAGE_PROMPT = "<image>这是一张商品评价截图。请判断用户的情绪是正面、中性还是负面，并用一句话说明理由。"
HOLDOUT_IMAGE = [
    ("评价里写着“质量很好，物流也快，已经回购第三次了”，还配了五星。情绪：正面", "情绪：中性"),
    ("用户说“颜色和图片差太多，客服也不回复”，只给了一星。情绪：负面", "情绪：负面"),
    ("评价只有“收到了，还没用”，给了三星。情绪：中性", "用户收到了。"),
    ("用户写“孩子很喜欢，就是有点小贵”，给了四星。情绪：正面", "情绪：负面"),
]


def holdout_bank() -> list[dict]:
    items = []
    for prompt, chosen, worse in bank_holdout.GENERAL_ZH + bank_holdout.SERVICE_ZH:
        items.append({"lang": "zh", "group": "general", "prompt": prompt, "chosen": chosen, "worse": worse})
    for prompt, chosen, worse in bank_holdout.GENERAL_EN:
        items.append({"lang": "en", "group": "general", "prompt": prompt, "chosen": chosen, "worse": worse})
    for chosen, worse in HOLDOUT_IMAGE:
        items.append({"lang": "zh", "group": "classify", "prompt": HOLDOUT_IMAGE_PROMPT, "chosen": chosen, "worse": worse})
    return items


RESTAURANTS = ["老王牛肉面", "蜜雪冰城", "肯德基", "沙县小吃", "喜茶", "麦当劳", "兰州拉面", "杨国福麻辣烫"]
DELIVERY_ISSUES = {
    "送餐超时": ("订单{no}已经超时四十分钟了，{restaurant}的餐还没到。",
                 "非常抱歉！骑手在{restaurant}出餐时等待较久，现在已在路上，预计8分钟送达；订单{no}的超时赔付券已发到您的账户。"),
    "少送餐品": ("{restaurant}的订单{no}少送了一杯饮料。",
                 "抱歉给您带来不便！已核实订单{no}少送一杯饮料，差价{amount}元已原路退回，同时已提醒{restaurant}加强核对。"),
    "餐品洒漏": ("收到的{restaurant}外卖汤全洒了，订单{no}。",
                 "很抱歉汤洒了影响您用餐！订单{no}已为您全额退款{amount}元，并将包装问题反馈给{restaurant}，请留意退款通知。"),
}
DELIVERY_TEMPLATE = "您好，您在{restaurant}的订单{no}（{issue}）我们已经收到反馈，正在联系商家和骑手核实处理，请您稍候。"


def templated_delivery_zh(rng: random.Random) -> dict:
    restaurant = rng.choice(RESTAURANTS)
    issue = rng.choice(list(DELIVERY_ISSUES))
    message, answer = DELIVERY_ISSUES[issue]
    slots = {"no": str(rng.randint(10**13, 10**14 - 1)), "restaurant": restaurant, "amount": rng.randint(6, 48)}
    return {"lang": "zh", "prompt": "用户：" + message.format(**slots), "chosen": answer.format(**slots),
            "rejected": DELIVERY_TEMPLATE.format(issue=issue, **slots)}


HOTELS = ["Harbour View Hotel", "Maple Lodge", "City Central Inn", "Seaside Resort", "Grand Plaza"]
BOOKING_ISSUES = {
    "change the dates": ("can I move booking {ref} at the {hotel} to next weekend?",
                         "Yes — I've checked and the {hotel} has the same room type free next weekend at the same rate. "
                         "Reply 'confirm' and I'll move booking {ref}; there's no change fee."),
    "a refund": ("I cancelled booking {ref} at the {hotel} but haven't been refunded.",
                 "Your cancellation of booking {ref} was within the free period, so the full amount is due back. I've "
                 "escalated it to the {hotel}'s billing team and you'll see the refund within five business days."),
    "an early check-in": ("is early check-in possible for booking {ref} at the {hotel}?",
                          "The {hotel} can usually offer check-in from 11:00 if rooms are ready; I've added the request to "
                          "booking {ref}, and guaranteed early check-in is available for a $25 fee."),
}
BOOKING_TEMPLATE = ("Dear guest, thank you for your message about {issue} for booking {ref} at the {hotel}. Our "
                    "reservations team will review it and reply within one business day.")


def templated_booking_en(rng: random.Random) -> dict:
    hotel = rng.choice(HOTELS)
    issue = rng.choice(list(BOOKING_ISSUES))
    message, answer = BOOKING_ISSUES[issue]
    ref = f"{rng.choice('ABCDEFGHJK')}{rng.randint(100000, 999999)}"
    return {"lang": "en", "prompt": "Guest: " + message.format(ref=ref, hotel=hotel),
            "chosen": answer.format(ref=ref, hotel=hotel), "rejected": BOOKING_TEMPLATE.format(issue=issue, ref=ref, hotel=hotel)}


ESSAY_TOPICS = ["环境保护", "科技创新", "传统文化", "乡村振兴"]


def holdout_boilerplate_text(kind: str, rng: random.Random) -> str:
    if kind == "praise_zh":
        return rng.choice(["感谢您的提问！这是一个非常好的问题，值得我们深入思考。希望我的回答对您有所帮助。",
                           "感谢您的提问！这是一个非常好的问题，值得我们每个人深入思考。希望以上回答对您有所帮助！"])
    if kind == "assistant_zh":
        return "作为一个AI助手，我会尽力为您提供帮助。" + rng.choice(["请问您还有其他问题吗？", "请问还有什么可以帮您的吗？"])
    if kind == "praise_en":
        return ("Thank you for your question! This is a great question that many people ask. "
                + rng.choice(["I hope this helps!", "I hope this answer helps you!"]))
    if kind == "essay_zh":
        topic = rng.choice(ESSAY_TOPICS)
        return (f"以下是一篇关于{topic}的文章：{topic}是当今社会面临的重要课题，关系到国家的发展和人民的幸福。"
                f"我们每个人都应该积极行动起来，为{topic}贡献自己的一份力量。")
    raise ValueError(kind)


def holdout_spec() -> Spec:
    return Spec(
        items=holdout_bank(),
        templated=[(templated_delivery_zh, 14), (templated_booking_en, 10)],
        boilerplate={"praise_zh": ("zh", 6), "assistant_zh": ("zh", 6), "praise_en": ("en", 5), "essay_zh": ("zh", 6)},
        boilerplate_text=holdout_boilerplate_text,
        off_topic_texts={"zh": ["小区将于本周六上午九点到十二点停水检修，请各位业主提前做好储水准备，给您带来的不便敬请谅解。"],
                         "en": ["Our office will be closed on Monday for the public holiday; normal opening hours resume on Tuesday."]},
        echo_styles=("qa_template", "question_twice", "verbatim", "prompt_start", "lead_in"),
        counts={"good_partial": 8, "off_topic": 12, "echo": 12, "identical": 12, "truncated": 14, "swapped": 10},
    )


def build_templated_set(rng: random.Random) -> list[dict]:
    """Issue #15's set: 200 pairs, most rejects one template filled with the prompt's order and product."""
    rows = []
    for n in range(200):
        row = templated_service_zh(rng)
        if n % 20 == 7:  # a shop's canned greeting instead of an answer: real boilerplate among them
            rows.append(record("boilerplate", row, boilerplate_text("shop_greeting", rng), ["boilerplate"], ["off_topic"]))
        elif n % 20 == 13:  # an answer cut at the token limit
            rows.append(record("truncated", row, truncate_mid(row["chosen"], rng), ["truncated"]))
        else:
            rows.append(record("good_templated", row, row["rejected"]))
    return rows


def write(path: Path, rows: list[dict], prefix: str) -> None:
    with path.open("w", encoding="utf-8") as out:
        for number, row in enumerate(rows, start=1):
            out.write(json.dumps({"id": f"{prefix}-{number:03d}", **row}, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Write the sets beside this script, or into the folder given as the only argument."""
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else HERE
    pairs = build_set(random.Random(SEED), dev_spec())
    random.Random(SEED).shuffle(pairs)
    write(out / "pairs.jsonl", pairs, "eval")
    write(out / "templated_on_topic.jsonl", build_templated_set(random.Random(SEED + 1)), "tpl")
    holdout = build_set(random.Random(SEED + 2), holdout_spec())
    random.Random(SEED + 2).shuffle(holdout)
    write(out / "holdout.jsonl", holdout, "holdout")
    kinds: dict[str, int] = {}
    for row in pairs:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    print(f"pairs.jsonl: {len(pairs)} pairs", dict(sorted(kinds.items())))
    print(f"holdout.jsonl: {len(holdout)} pairs")


if __name__ == "__main__":
    main()
