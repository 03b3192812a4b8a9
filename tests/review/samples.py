"""Samples for the review-flow tests: `make_sample`, a sample of a class with its three modes' reasoning."""
from review.models import Mode
from tests.factories import ReasoningFactory, SampleFactory


def make_sample(category, external_id, *, mode2_correct=True, mode3_output="图片显示规格选项。\n类别：商品分类选项",
                wrong_category=None):
    """A sample of `category` with mode 1/2/3 reasoning; mode 2 wrong (→ wrong_category) on request."""
    sample = SampleFactory(label=category, external_id=external_id)
    ReasoningFactory(sample=sample, mode=Mode.FREE, is_correct=True)
    if mode2_correct:
        ReasoningFactory(sample=sample, mode=Mode.WITH_DEFINITIONS, is_correct=True)
    else:
        ReasoningFactory(sample=sample, mode=Mode.WITH_DEFINITIONS, predicted_category=wrong_category,
                         predicted_name=wrong_category.name, is_correct=False)
    ReasoningFactory(sample=sample, mode=Mode.LIMITED, is_correct=True, output=mode3_output,
                     length=len(mode3_output))
    return sample
