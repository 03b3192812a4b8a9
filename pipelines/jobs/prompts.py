"""Default prompt templates (seeded as PromptTemplate version 1) and how they are filled in.

Templates are plain text with a few placeholders, replaced literally (other braces, such as the
JSON example of the info-extraction prompt, are left alone):

    {category_names}        the dataset's class names, one per line
    {category_definitions}  "名称：定义" per line (the team's revised definition when there is one)

Every classification prompt asks for the same parseable answer format — a `推理：` part and a
final `类别：<名称>` line — which `review.parsing.parse_predicted_category` reads.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from core.errors import ApplicationError

from ..models import PromptTemplate

Kind = PromptTemplate.Kind

ANSWER_FORMAT = """请严格按以下格式回答：
推理：<你的推理过程>
类别：<类别名称，必须是上面列出的类别之一>"""

MODE1 = """你是电商客服场景的图片分类助手。请仔细观察这张图片，自由推理它属于哪一个客服场景。
可选类别：
{category_names}

""" + ANSWER_FORMAT

MODE2 = """你是电商客服场景的图片分类助手。以下是各个类别及其定义：
{category_definitions}

请结合类别定义，分析图片中的内容（文字、界面元素、物体），判断图片所属的类别。

""" + ANSWER_FORMAT

MODE3 = """你是电商客服场景的图片分类助手。以下是各个类别及其定义：
{category_definitions}

请结合类别定义，分析图片中的内容，判断图片所属的类别。推理部分请控制在{limit}字以内。

""" + ANSWER_FORMAT

INFO_EXTRACTION = """请对这张电商客服场景图片进行信息提取，只输出一个 JSON 对象，不要输出其他内容。字段如下：
{"visible_text": ["图中可见的文字"], "objects": ["主要物体"], "screen_elements": ["界面元素，如按钮、标签、输入框"], "scene": "一句话描述图片场景"}"""

# The drafted correction of a wrong or too-long mode-3 output (review/jobs/correction_drafts.py), with
# its own placeholders: {label}, {definition}, {limit} and {examples} (correct outputs of the class).
CORRECTION_DRAFT = """你是电商客服场景图片分类训练数据的修订助手，请为这张图片起草一条修正输出（修正草稿）。
这张图片的类别是“{label}”。类别定义：{definition}

下面是同一类别中正确、且在{limit}字以内的输出，请学习它们的分析过程和格式：
{examples}

请按照同样的分析过程和格式，为这张图片写一条输出：先根据图片中能看到的内容说明它为什么属于“{label}”，
最后一行写“类别：{label}”。全部内容不超过{limit}字，只输出这条内容本身。"""

DEFAULTS: dict[str, str] = {
    Kind.CLASSIFICATION_MODE1: MODE1,
    Kind.CLASSIFICATION_MODE2: MODE2,
    Kind.CLASSIFICATION_MODE3: MODE3,
    Kind.INFO_EXTRACTION: INFO_EXTRACTION,
    Kind.CORRECTION_DRAFT: CORRECTION_DRAFT,
}

MODE_KINDS = {1: Kind.CLASSIFICATION_MODE1, 2: Kind.CLASSIFICATION_MODE2, 3: Kind.CLASSIFICATION_MODE3}
# The prompt kinds this area edits (others own the generation/judge/DPO prompts).
EDITABLE_KINDS = (Kind.CLASSIFICATION_MODE1, Kind.CLASSIFICATION_MODE2, Kind.CLASSIFICATION_MODE3,
                  Kind.INFO_EXTRACTION, Kind.CORRECTION_DRAFT)


def default_text(kind: str) -> str:
    """The default text of a prompt kind. The mode-3 prompt states the length limit as it is set
    when the default is read (TRAINSET_MAX_LENGTH); the drafting prompt fills {limit} per job."""
    text = DEFAULTS[kind]
    return text.replace("{limit}", str(settings.TRAINSET_MAX_LENGTH)) if kind == Kind.CLASSIFICATION_MODE3 else text


def render_prompt(text: str, *, categories: Iterable = ()) -> str:
    """Fill a classification/info template with the dataset's categories."""
    categories = list(categories)
    names = "\n".join(f"- {c.name}" for c in categories)
    definitions = "\n".join(f"- {c.name}：{c.effective_definition or '（无定义）'}" for c in categories)
    return text.replace("{category_names}", names).replace("{category_definitions}", definitions)


def prompt_current(kind: str) -> PromptTemplate:
    """The newest version of a prompt kind, seeding version 1 from DEFAULTS the first time."""
    template = PromptTemplate.objects.filter(kind=kind).order_by("-version").first()
    if template is not None:
        return template
    if kind not in DEFAULTS:
        raise ApplicationError(f"没有 {kind} 的提示词模板")
    return prompt_seed_defaults(kinds=[kind])[0]


@transaction.atomic
def prompt_seed_defaults(*, kinds: Iterable[str] | None = None) -> list[PromptTemplate]:
    """Create version 1 of each default prompt that has no version yet; returns the templates."""
    templates = []
    for kind in kinds or DEFAULTS:
        template, _ = PromptTemplate.objects.get_or_create(
            kind=kind, version=1, defaults={"text": default_text(kind), "note": "默认模板"}
        )
        templates.append(template)
    return templates


@transaction.atomic
def prompt_save_version(*, kind: str, text: str, note: str = "", user=None) -> PromptTemplate:
    """Save an edited prompt as a new version (earlier versions stay, rows keep pointing at them)."""
    text = (text or "").strip()
    if kind not in EDITABLE_KINDS:
        raise ApplicationError("这个提示词不能在这里编辑")
    if not text:
        raise ApplicationError("提示词不能为空")
    if kind in MODE_KINDS.values() and "类别" not in text:
        raise ApplicationError("分类提示词必须要求以“类别：<名称>”的格式回答")
    missing = [p for p in ("{label}", "{limit}", "{examples}") if kind == Kind.CORRECTION_DRAFT and p not in text]
    if missing:
        raise ApplicationError(f"修正草稿提示词必须包含 {'、'.join(missing)}（类别、字数限制、同类别示例）")
    latest = PromptTemplate.objects.select_for_update().filter(kind=kind).order_by("-version").first()
    if latest is not None and latest.text.strip() == text:
        return latest  # unchanged: no new version
    version = (latest.version if latest else 0) + 1
    return PromptTemplate.objects.create(kind=kind, version=version, text=text, note=note[:300], created_by=user)
