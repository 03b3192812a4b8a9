import pytest

from review.parsing import parse_predicted_category, text_length

NAMES = ["商品分类选项", "换货", "退货退款", "物流查询", "售后进度", "其他"]


@pytest.mark.parametrize(
    "output, expected",
    [
        ("图片显示颜色选项。\n类别：商品分类选项", "商品分类选项"),
        ("分析……\n类别: 【换货】", "换货"),
        ("最终类别为：退货退款。", "退货退款"),
        ("答案：物流查询（快递）", "物流查询"),
        ("推理过程……\n物流查询", "物流查询"),
        ("先判断为类别：换货，复核后类别：退货退款", "退货退款"),
        ("类別：商品分类選項", None),  # traditional characters are not silently mapped
        ("我无法判断这张图片。", None),
        ("类别：会员积分", None),
        ("", None),
    ],
)
def test_parse_predicted_category(output, expected):
    assert parse_predicted_category(output, NAMES) == expected


def test_parse_accepts_shortened_name_only_when_unambiguous():
    assert parse_predicted_category("类别：分类选项", NAMES) == "商品分类选项"
    assert parse_predicted_category("类别：退", NAMES) is None  # 退货退款? 售后? ambiguous/too short


def test_text_length_counts_characters_without_whitespace():
    assert text_length("图片 显示\n颜色") == 6
    assert text_length("abc 12") == 5
