"""The demo dataset: 23 scene classes, ~700 generated screenshots, mode 1/2/3 reasoning in Chinese.

Deterministic (a fixed seed), idempotent (a second run changes nothing) and fast: images are
simple Pillow drawings written only when missing. Each image carries its TRUE class as a marker
(`review.image_marker`), so the LLM simulator "sees" the truth even for the planted label errors.
"""
import random
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from PIL import Image, ImageDraw, ImageFont

from .demo_catalog import DEMO_CATEGORIES, DemoCategory
from .image_marker import draw_marker
from core.images import media_path
from .models import Assignment, Cause, Dataset, Review, Sample
from .services import ClassificationRecord, RecordsSaveResult, classification_records_save, review_save

DEMO_DATASET_NAME = "客服场景演示"
DEMO_SEED = 20261128
DEMO_SAMPLE_COUNT = 700
DEMO_MODEL = "qwen-vl-72b-instruct"
REFUSED_SAMPLE_ID = "9e2a1ebe-87c3-4547-b405-b592aabfdab-1384"
REFUSED_SAMPLE_LABEL = "换货页面"  # the seed: "在换货这个类中" (the team's shortened folder name)
ADMIN_LOGIN = ("admin", "datafix-admin-2026")
REVIEWER_PASSWORD = "shenhe-Demo-2026"
REVIEWER_NAMES = tuple(f"reviewer{i}" for i in range(1, 6))
FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
IMAGE_SIZE = (360, 540)

# What a screenshot of each class shows: its title bar and a few visible elements.
SCENES: dict[str, tuple[str, tuple[str, ...]]] = {
    "商品分类选项": ("选择规格", ("颜色：雾霾蓝", "尺寸：XL", "库存 23 件", "加入购物车")),
    "实物拍摄": ("实物照片", ("外壳裂痕", "包装破损", "瑕疵特写", "快递面单")),
    "商品头图": ("商品主图", ("新品上市", "限时直降", "官方正品", "白底主图")),
    "商品详情页截图": ("商品详情", ("¥199 月销 2000+", "卖点介绍", "规格参数", "立即购买")),
    "下单过程中出现异常": ("提交订单", ("库存不足", "订单提交失败", "请稍后重试", "返回购物车")),
    "订单详情页面": ("订单详情", ("订单号 202611280001", "实付款 ¥128.00", "下单时间", "再次购买")),
    "支付页面": ("收银台", ("支付金额 ¥89.00", "选择支付方式", "余额不足", "确认支付")),
    "评论区截图页面": ("商品评价", ("五星好评", "买家晒图", "追加评价", "有用 12")),
    "物流列表页面": ("我的包裹", ("3 个包裹运输中", "待取件 1", "已签收", "查看全部")),
    "物流跟踪页面": ("物流详情", ("运单号 SF1234567", "运输中", "已到达杭州转运中心", "派送员电话")),
    "物流异常页面": ("物流异常", ("包裹滞留 5 天", "派送失败", "已退回发件人", "联系快递员")),
    "退款页面": ("退款详情", ("退款金额 ¥89.00", "退款原因", "退款中", "原路退回")),
    "退货页面": ("退货退款", ("寄回地址", "填写退货单号", "商家待收货", "上门取件")),
    "换货页面": ("申请换货", ("换货原因", "选择新规格", "寄回方式", "提交申请")),
    "购物车页面": ("购物车 (3)", ("全选", "合计 ¥356.00", "去结算", "移入收藏")),
    "店铺页面": ("官方旗舰店", ("关注 12.3万", "店铺评分 4.9", "全部商品", "店铺会员")),
    "活动页面": ("双11 狂欢会场", ("满300减50", "限时秒杀", "活动规则", "立即抢购")),
    "优惠券领取页面": ("领券中心", ("满199减30", "立即领取", "有效期至12月31日", "已领取")),
    "账户页面": ("我的", ("会员等级 V3", "收货地址", "账号与安全", "退出登录")),
    "投诉举报页面": ("投诉商家", ("投诉类型", "问题描述", "上传凭证", "提交投诉")),
    "平台介入页面": ("平台介入", ("申请平台介入", "举证剩余 2 天", "平台处理中", "协商记录")),
    "外部APP截图": ("短信", ("【快递】包裹已到驿站", "微信聊天", "银行扣款通知", "其他应用")),
    "其他类别图片": ("相册", ("风景照片", "宠物", "自拍", "表情包")),
}
# Names a free-reasoning (mode 1) model uses that are no class at all: unparseable answers.
FREE_NAMES = ("售后咨询", "购物页面", "手机截图", "电商界面", "用户求助")


@dataclass
class DemoResult:
    dataset: Dataset
    saved: RecordsSaveResult
    images_written: int
    users_created: list[str]
    assignments_created: int
    reviews_created: int
    legacy_dataset: str | None = None  # an earlier demo's dataset, renamed aside


def _external_id(rng: random.Random, number: int) -> str:
    hexs = "".join(rng.choice("0123456789abcdef") for _ in range(31))
    return f"{hexs[:8]}-{hexs[8:12]}-{hexs[12:16]}-{hexs[16:20]}-{hexs[20:]}-{number}"


def _sizes(rng: random.Random, total: int, classes: int) -> list[int]:
    """Uneven class sizes (like the real data) that add up to `total`, at least one each."""
    raw = [rng.randint(22, 38) for _ in range(classes)]
    sizes = [max(1, round(r * total / sum(raw))) for r in raw]
    while sum(sizes) != total:
        i = rng.randrange(classes)
        if sum(sizes) > total and sizes[i] > 1:
            sizes[i] -= 1
        elif sum(sizes) < total:
            sizes[i] += 1
    return sizes


def _mode1(rng, true: DemoCategory, predicted: str) -> str:
    title, elements = SCENES[true.name]
    a, b = rng.sample(elements, 2)
    return (
        f"观察：这是一张手机购物应用的截图，顶部标题为“{title}”，页面上能看到“{a}”和“{b}”等内容。\n"
        f"推理：用户上传这张图，通常是想就页面中的信息咨询客服。结合标题和页面元素，"
        f"这张图片最可能反映的场景是{predicted}。\n类别：{predicted}"
    )


def _mode2(rng, true: DemoCategory, predicted: DemoCategory) -> str:
    title, elements = SCENES[true.name]
    a, b, c = rng.sample(elements, 3)
    text = (
        f"观察：图片为手机应用页面，标题“{title}”，页面中依次显示“{a}”“{b}”以及“{c}”。\n"
        f"分析：根据给定的类别定义，“{predicted.name}”指{predicted.definition}。"
    )
    if predicted.name == true.name:
        text += f"图片中的“{a}”“{b}”正是这一场景的典型元素，与其他类别的定义不符。\n"
    else:
        text += f"图片中的“{b}”在{predicted.name}场景中也经常出现，且页面信息与该定义有重合，因此判断为{predicted.name}。\n"
    return text + f"类别：{predicted.name}"


def _mode3(rng, true: DemoCategory, predicted: DemoCategory, long: bool) -> str:
    title, elements = SCENES[true.name]
    a, b = rng.sample(elements, 2)
    text = f"图片为“{title}”页面，显示“{a}”和“{b}”，符合“{predicted.name}”的定义。"
    if long:
        text += (
            f"进一步看，页面布局是典型的电商客服场景，用户截取该页面很可能是为了咨询相关问题；"
            f"虽然其中部分元素也可能出现在其他场景，但整体信息与{predicted.definition}的描述最为一致，"
            f"所以综合判断属于该类别。"
        )
    return text + f"\n类别：{predicted.name}"


def build_demo_records(
    seed: int = DEMO_SEED, sample_count: int = DEMO_SAMPLE_COUNT, label_error_rate: float | None = None
) -> tuple[list[ClassificationRecord], dict[str, int]]:
    """The demo samples as records (image paths still empty) and each sample's true class index.

    `label_error_rate` is the share of samples planted with a wrong label (default: the demo's 9);
    with `seed` it makes other data sets of the same shape (the label-error benchmark's)."""
    rng = random.Random(seed)
    by_name = {c.name: c for c in DEMO_CATEGORIES}
    index_of = {c.name: i for i, c in enumerate(DEMO_CATEGORIES)}
    sizes = _sizes(rng, sample_count - 1, len(DEMO_CATEGORIES))
    records, true_index = [], {}
    number = 1000
    planted_count = (min(9, sample_count // 10) if label_error_rate is None
                     else round(label_error_rate * (sample_count - 1)))
    planted = set(rng.sample(range(sample_count - 1), planted_count))
    position = 0
    for category, size in zip(DEMO_CATEGORIES, sizes):
        for _ in range(size):
            number += rng.randint(1, 9)
            external_id = _external_id(rng, number)
            true = category
            if position in planted:
                # A label error: the image really shows a confusable class; modes 2/3 see the truth.
                true = by_name[rng.choice(category.confusable)]
            position += 1
            mode2_wrong = true is category and rng.random() < 0.13
            mode2_pred = by_name[rng.choice(true.confusable)] if mode2_wrong else true
            if mode2_wrong:
                mode3_pred = mode2_pred if rng.random() < 0.6 else true
            else:
                mode3_pred = by_name[rng.choice(true.confusable)] if rng.random() < 0.04 else true
            roll = rng.random()
            if roll < 0.18:
                mode1_pred = rng.choice(true.confusable)
            elif roll < 0.26:
                mode1_pred = rng.choice(FREE_NAMES)
            else:
                mode1_pred = true.name
            record = ClassificationRecord(
                external_id=external_id,
                label=category.name,
                outputs={
                    1: _mode1(rng, true, mode1_pred),
                    2: _mode2(rng, true, mode2_pred),
                    3: _mode3(rng, true, mode3_pred, long=rng.random() < 0.12),
                },
                model_names={1: DEMO_MODEL, 2: DEMO_MODEL, 3: DEMO_MODEL},
            )
            if rng.random() < 0.5:
                title, elements = SCENES[true.name]
                record.image_info = {
                    "场景": "手机应用截图",
                    "可见文字": [title, *rng.sample(elements, 3)],
                    "界面元素": ["顶部标题栏", "信息列表", "底部按钮"],
                }
            records.append(record)
            true_index[external_id] = index_of[true.name]
    # The sample the content filter refused: it exists, but no mode produced an output.
    records.append(ClassificationRecord(external_id=REFUSED_SAMPLE_ID, label=REFUSED_SAMPLE_LABEL))
    true_index[REFUSED_SAMPLE_ID] = index_of[REFUSED_SAMPLE_LABEL]
    return records, true_index


def _font(size: int):
    if FONT_PATH.exists():
        return ImageFont.truetype(str(FONT_PATH), size)
    return ImageFont.load_default(size)


def draw_demo_image(category: DemoCategory, index: int, external_id: str) -> Image.Image:
    """A coloured phone 'screenshot' of the class with a few Chinese words and the class marker."""
    rng = random.Random(external_id)
    hue = (index * 37) % 360
    image = Image.new("RGB", IMAGE_SIZE, _hsl(hue, 0.35, 0.94))
    draw = ImageDraw.Draw(image)
    title_font, body_font = _font(22), _font(17)
    width, height = IMAGE_SIZE
    draw.rectangle([0, 0, width, 64], fill=_hsl(hue, 0.55, 0.45))
    title, elements = SCENES[category.name]
    draw.text((width // 2, 40), title, font=title_font, fill="white", anchor="mm")
    y = 86
    for text in rng.sample(elements, len(elements)):
        draw.rounded_rectangle([16, y, width - 16, y + 64], radius=10, fill="white", outline=_hsl(hue, 0.3, 0.8))
        draw.text((32, y + 32), text, font=body_font, fill=(40, 40, 40), anchor="lm")
        y += 80
    draw.rounded_rectangle([40, height - 70, width - 40, height - 24], radius=22, fill=_hsl(hue, 0.65, 0.5))
    draw.text((width // 2, height - 47), elements[-1], font=body_font, fill="white", anchor="mm")
    draw_marker(image, index)
    return image


def _hsl(h: float, s: float, lightness: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hls_to_rgb(h / 360, lightness, s)
    return int(r * 255), int(g * 255), int(b * 255)


def _ensure_users() -> tuple[dict[str, object], list[str]]:
    User = get_user_model()
    users, created = {}, []
    admin, was_created = User.objects.get_or_create(
        username=ADMIN_LOGIN[0], defaults={"is_staff": True, "is_superuser": True}
    )
    if was_created:
        admin.set_password(ADMIN_LOGIN[1])
        admin.save()
        created.append(admin.username)
    users[admin.username] = admin
    for name in REVIEWER_NAMES:
        user, was_created = User.objects.get_or_create(username=name)
        if was_created:
            user.set_password(REVIEWER_PASSWORD)
            user.save()
            created.append(name)
        users[name] = user
    return users, created


def _planted_reviews(dataset: Dataset, users: dict) -> int:
    """A few finished reviews (reviewer2's first class) so progress and analysis have something."""
    assignment = (
        Assignment.objects.filter(reviewer=users["reviewer2"], category__dataset=dataset)
        .select_related("category").order_by("category__position").first()
    )
    if assignment is None:
        return 0
    samples = (
        Sample.objects.filter(label=assignment.category, review__isnull=True)
        .prefetch_related("reasonings").order_by("external_id")[:12]
    )
    if Review.objects.filter(sample__label=assignment.category).exists():
        return 0  # already planted (or reviewed by hand): leave it alone
    created = 0
    for sample in samples:
        mode2 = next((r for r in sample.reasonings.all() if r.mode == 2), None)
        mode3 = next((r for r in sample.reasonings.all() if r.mode == 3), None)
        wrong = mode2 is not None and mode2.is_correct is False
        corrected = ""
        if mode3 is not None and mode3.is_correct is False:
            corrected = mode3.output.rsplit("类别：", 1)[0] + f"类别：{sample.label.name}"
        review_save(
            sample=sample, user=users["reviewer2"],
            cause=Cause.DEFINITIONS_OVERLAP if wrong else Cause.NONE,
            corrected_output=corrected, label_error=False, suggested_label=None,
            note="定义与相近类别有交集" if wrong else "", version=0,
        )
        created += 1
    return created


def _draw_images(dataset: Dataset, records: list[ClassificationRecord], true_index: dict[str, int]) -> int:
    """Draw each record's image (its TRUE class marked) where missing; sets `record.image`."""
    folder = f"datasets/{dataset.pk}"
    media_path(folder).mkdir(parents=True, exist_ok=True)
    written = 0
    for record in records:
        relative = f"{folder}/{record.external_id}.png"
        target = media_path(relative)
        if not target.exists():
            index = true_index[record.external_id]
            draw_demo_image(DEMO_CATEGORIES[index], index, record.external_id).save(target, format="PNG", optimize=False)
            written += 1
        record.image = relative
    return written


@dataclass
class GeneratedDataset:
    dataset: Dataset
    # External ids whose dataset label was planted wrong (the image shows another class).
    wrong_label_ids: set[str]


@transaction.atomic
def generate_dataset(*, name: str, seed: int, sample_count: int = DEMO_SAMPLE_COUNT,
                     label_error_rate: float | None = None, images: bool = True) -> GeneratedDataset:
    """A data set shaped like the demo's (same classes, modes and mistakes) from another `seed`
    and label-error rate, with the ids of its planted label errors: what the label-error ranking is
    measured against. No users, assignments or reviews."""
    dataset, _ = Dataset.objects.get_or_create(name=name, defaults={"description": f"生成的数据（seed {seed}）"})
    records, true_index = build_demo_records(seed=seed, sample_count=sample_count, label_error_rate=label_error_rate)
    if images:
        _draw_images(dataset, records, true_index)
    classification_records_save(dataset=dataset, records=records,
                                categories=[(c.name, c.definition) for c in DEMO_CATEGORIES])
    wrong = {r.external_id for r in records if DEMO_CATEGORIES[true_index[r.external_id]].name != r.label}
    return GeneratedDataset(dataset, wrong)


def demo_wrong_label_ids(sample_count: int = DEMO_SAMPLE_COUNT) -> set[str]:
    """The external ids of the demo data set's planted label errors."""
    records, true_index = build_demo_records(sample_count=sample_count)
    return {r.external_id for r in records if DEMO_CATEGORIES[true_index[r.external_id]].name != r.label}


LEGACY_DATASET_SUFFIX = "（旧版演示类别）"


def _set_aside_legacy_demo() -> str | None:
    """Rename a demo dataset made with an earlier class catalog out of the way (nothing deleted:
    it may hold reviews); returns its new name, or None when there was none."""
    dataset = Dataset.objects.filter(name=DEMO_DATASET_NAME).first()
    if dataset is None or not dataset.categories.exclude(name__in=[c.name for c in DEMO_CATEGORIES]).exists():
        return None
    name, n = f"{DEMO_DATASET_NAME}{LEGACY_DATASET_SUFFIX}", 1
    while Dataset.objects.filter(name=name).exists():
        n += 1
        name = f"{DEMO_DATASET_NAME}{LEGACY_DATASET_SUFFIX[:-1]} {n}）"
    dataset.name = name
    dataset.save(update_fields=["name"])
    return name


@transaction.atomic
def load_demo(*, sample_count: int = DEMO_SAMPLE_COUNT) -> DemoResult:
    """Create or complete the demo dataset, users, assignments and images; safe to run again.

    `sample_count` exists for fast tests; the demo itself always uses the default. A demo dataset
    from an earlier class catalog is renamed aside (`LEGACY_DATASET_SUFFIX`) and a new one built.
    """
    legacy_name = _set_aside_legacy_demo()
    users, users_created = _ensure_users()
    dataset, _ = Dataset.objects.get_or_create(
        name=DEMO_DATASET_NAME, defaults={"description": "23 个电商客服场景类别的演示数据（自动生成）"}
    )
    records, true_index = build_demo_records(sample_count=sample_count)
    written = _draw_images(dataset, records, true_index)
    saved = classification_records_save(
        dataset=dataset, records=records, categories=[(c.name, c.definition) for c in DEMO_CATEGORIES]
    )
    assignments_created = 0
    if not Assignment.objects.filter(category__dataset=dataset).exists():
        categories = list(dataset.categories.order_by("position"))
        admin = users[ADMIN_LOGIN[0]]
        for i, category in enumerate(categories):
            # Contiguous blocks of about five classes each, as the team split the work.
            reviewer = users[REVIEWER_NAMES[min(i * len(REVIEWER_NAMES) // len(categories), 4)]]
            Assignment.objects.create(reviewer=reviewer, category=category, assigned_by=admin)
            assignments_created += 1
    reviews_created = _planted_reviews(dataset, users)
    return DemoResult(dataset, saved, written, users_created, assignments_created, reviews_created, legacy_name)


def demo_source_images(count: int) -> list[str]:
    """Images the generation demo's `count` sources may reuse (pipelines.demo.load_pipelines_demo):
    the first samples' screenshots, twice as many as needed since some may be missing on disk."""
    return list(Sample.objects.exclude(image="").order_by("id").values_list("image", flat=True)[:count * 2])


def demo_logins() -> list[tuple[str, str, str]]:
    """(username, password, role) for the printed login list."""
    return [(ADMIN_LOGIN[0], ADMIN_LOGIN[1], "管理员")] + [(n, REVIEWER_PASSWORD, "审核员") for n in REVIEWER_NAMES]
