"""The DPO pair checks' issue names and labels, every threshold that decides them (each with the
reason for its value), and the likely causes the batch report names."""
from __future__ import annotations

ISSUE_NAMES = ("identical", "off_topic", "echo", "boilerplate", "empty", "truncated", "likely_swapped")

ISSUE_LABELS = {
    "identical": "与 chosen 相同或几乎相同",
    "off_topic": "与 prompt 无关（跑题）",
    "echo": "复述 prompt（reject 大部分是 prompt 的原文）",
    "boilerplate": "模板化重复（同一段内容出现在许多不相关的 prompt 下）",
    "empty": "空回答",
    "truncated": "截断 / 话没说完",
    "likely_swapped": "reject 比 chosen 更完整（可能弄反了）",
}
# What each check asks, for pages that list every check with its result ("是否跑题 ✓ 通过").
CHECK_TITLES = {
    "identical": "是否与 chosen 相同",
    "off_topic": "是否跑题",
    "echo": "是否复述 prompt",
    "boilerplate": "是否模板化重复",
    "empty": "是否为空",
    "truncated": "是否截断",
    "likely_swapped": "是否弄反",
}

# --------------------------------------------------------------------------- thresholds
# Sizes are in "units": a CJK character bigram counts 1, a Latin word 2 (a word carries about as much
# as two Chinese characters), so one threshold serves both languages.
#
# identical: bigram-multiset Dice ≥ 0.95 on the text without spacing and with punctuation unified means
# at most a few characters differ; dropping one item of a five-item list already falls to ≈ 0.85.
IDENTICAL_MIN_SIMILARITY = 0.95
# off_topic is judged on the share of the reject's content found in the prompt or the chosen answer.
# Off-topic text shares ≤ 0.07 of its bigrams/words with them (the seed's boilerplate: 0); on-topic
# answers, even vague ones, share ≥ 0.1 — or, when they rephrase, many single characters (the
# character test below).
OFF_TOPIC_MAX_RELEVANCE = 0.10
# … and under 0.3 of its distinct content characters (CJK): "春天来了，花都开了" shares one bigram with
# "写一首关于春天的五言绝句" but a third of its characters with the prompt and the poem.
OFF_TOPIC_MAX_CHAR_RELEVANCE = 0.30
# … and it mentions nothing of its prompt: a reject that names the prompt's topic ("学英语是一件需要耐心的
#事情…" for "怎样才能学好英语？") is on the topic, however badly it answers; one of these is enough.
# Misaligned rows and the seed's boilerplate mention nothing of the prompt they sit under.
OFF_TOPIC_MAX_PROMPT_MENTIONS = 0
# A reject needs this much content to be called off-topic: "多休息就好了" (6) or "Because they are happy"
# are short vague answers whose words happen to differ; an unrelated answer runs to a sentence or more.
OFF_TOPIC_MIN_SIZE = 12
# echo: ≥ 0.85 of the reject's content, by length, is copied from the prompt — "水的化学式是HO" restates
# the question but answers it (0.67); the prompt echoed behind "好的，" is 1.0, with a few hedging words
# around it ("…的话，比如…等等") 0.89 …
ECHO_MIN_COPY = 0.85
# … and the reject has at least this much content (CJK characters; words count 2) — or it is the prompt's
# beginning, at least ECHO_MIN_PIECE tokens of it ("太阳系有几颗", "What is inflation?"): short answers made
# of the prompt's words ("情绪：负面", "15% of 80 is 15", an option the prompt lists) are answers …
ECHO_MIN_SIZE = 8
ECHO_MIN_PIECE = 3
# … and where the prompt is an instruction followed by its input ("改正错别字：我门…"), the reject copies
# the instruction: returning the input unchanged is a failed edit, a legitimate worse answer. Without
# an input part, the chosen answer must copy clearly less (restating tasks copy the prompt too).
ECHO_MIN_INSTRUCTION_COPY = 2
ECHO_MIN_MARGIN = 0.30
# boilerplate: rejects whose residuals (the text left after removing what their own prompt explains)
# have token-trigram Jaccard ≥ 0.5 are one template: "…在医疗保健领域的应用" / "…在金融领域的应用" ≈ 0.8.
BOILERPLATE_MIN_SIMILARITY = 0.5
# … or a residual ≥ 0.6 contained in the other: one text with a sentence more or less, or a variant
# ending ("请问您还有其他问题吗？" / "请问还有什么可以帮您的吗？").
BOILERPLATE_MIN_CONTAINMENT = 0.6
BOILERPLATE_LSH_THRESHOLD = 0.35
# A template under three unrelated prompts is a pattern, not a coincidence; fewer is normal reuse.
BOILERPLATE_MIN_PROMPTS = 3
# Prompts this alike (bigram Dice ≥ 0.8: "…（第4题）" / "…（第14题）") are one prompt asked twice, where the
# same reject is expected; prompts that merely share an instruction template stay unrelated.
SAME_PROMPT_MIN_SIMILARITY = 0.8
# Short rejects ("是", "不知道", "A") legitimately recur across prompts: a residual needs this many
# tokens (CJK characters or words) to count as recurring content.
BOILERPLATE_MIN_TOKENS = 8
# A member of a recurring template that carries this much of its own prompt's specifics — content
# found in its prompt but not shared by most of the template's members (an order number counts 2,
# "蓝牙耳机" 3) — is a filled-in template reply to that prompt, not boilerplate.
BOILERPLATE_MIN_FILL = 2
# A unit in at least this share of a cluster's rejects is part of the template, not a fill.
TEMPLATE_MIN_SHARE = 0.5
# truncated (no end of sentence): a reject this long that ends on a letter while the chosen ends a
# sentence, whose last sentence has run this long without ending, is cut off; shorter ones are
# list-like answers ("苹果、香蕉") or labels ("类别：物流查询") that end without punctuation.
TRUNCATED_MIN_CHARS = 12
TRUNCATED_MIN_FRAGMENT = 8
# likely_swapped: the reject is ≥ 1.5× as long and has ≥ 1.3× (and ≥ 5 more) distinct content n-grams …
SWAPPED_MIN_LENGTH_RATIO = 1.5
SWAPPED_MIN_RICHNESS_RATIO = 1.3
SWAPPED_MIN_EXTRA_GRAMS = 5
# … and it covers at least half of the chosen answer's content: the fuller answer contains the thinner
# one. A vague reject that only echoes the prompt ("关于水果，这个问题比较复杂…") is longer, not richer.
SWAPPED_MIN_CHOSEN_COVERAGE = 0.5
# When the reject contains the whole chosen answer word for word, a smaller surplus is enough: the
# chosen is the reject with its end missing ("…选项。" vs "…选项。类别：发票开具").
SWAPPED_CONTAINED_MIN_LENGTH_RATIO = 1.15
SWAPPED_CONTAINED_MIN_EXTRA = 2
# The job report calls the batch "mostly off-topic" (or "mostly echoes") above half of the rejects.
MOSTLY_OFF_TOPIC_SHARE = 0.5

# Likely causes of mostly off-topic rejects, in the seed's words (002: 诊断报告).
OFF_TOPIC_CAUSES = (
    "用错了模型 / checkpoint：加载的可能是预训练模型而不是 SFT 模型，或 checkpoint 路径不对、权重没有正确加载。"
    "请核对下面的 endpoint 和模型名。",
    "prompt 格式与训练时不一致：SFT 训练时 prompt 的形式（例如结尾的 [EOS]、对话模板）必须与生成时完全相同。"
    "请核对下面的 prompt 模板。",
    "采样设置：temperature / top_p 过高会让弱模型生成训练数据中的高频模板；先用 greedy（temperature=0）试几条。",
    "SFT 训练不充分：训练轮数太少或 loss 没有降下来（通常应低于 1.0），模型还没学会按 prompt 作答。",
)
# Likely causes of rejects that repeat the prompt: the model continues the text instead of answering.
ECHO_CAUSES = (
    "模型把 prompt 当成要续写的文本，而不是要回答的问题：可能加载的是没有经过 SFT 的预训练模型，或 SFT 训练不充分。",
    "prompt 格式与训练时不一致：例如训练时用 “{prompt}[EOS]” 而生成时没有 [EOS]，或聊天模板（system / user 角色）不同。"
    "请核对下面的 prompt 模板。",
    "多模态 prompt 中的图片没有被模型收到（<image> 占位符与图片不匹配），模型只能复述文字部分。",
    "max_tokens 太小或 stop 序列设置不当，回答刚开始就被截断。",
)
