"""Simulated structured image descriptions for the info-extraction prompt (JSON answers).

Like the classification responder, it reads the class marker of demo images and describes what
such a screenshot typically shows: visible text, objects, screen elements and a one-line scene.
"""
from __future__ import annotations

import json
import random

from review.sim_responders.classification import _describe, _seen_category
from pipelines.llm.simulator.messages import request_image_urls, request_text

PRIORITY = 20

# Typical content per scene class (a few words each; the rest is derived from the definition).
_TEXTS = {
    "商品分类选项": ["颜色分类", "尺码", "已选：黑色 XL", "加入购物车"],
    "实物拍摄": ["（实物照片，无文字）"],
    "商品头图": ["新品上市", "限时直降", "官方正品"],
    "商品详情页截图": ["月销 1万+", "商品参数", "立即购买"],
    "下单过程中出现异常": ["库存不足", "订单提交失败", "请稍后重试"],
    "订单详情页面": ["订单编号 20240501123456", "实付款 ¥89.90", "下单时间"],
    "支付页面": ["收银台", "支付金额 ¥89.00", "确认支付"],
    "评论区截图页面": ["追加评价", "买家秀", "好评"],
    "物流列表页面": ["我的包裹", "运输中", "待取件"],
    "物流跟踪页面": ["运单号 SF1234567890", "运输中", "已签收"],
    "物流异常页面": ["派送失败", "包裹滞留", "已退回"],
    "退款页面": ["申请退款", "退款金额 ¥129.00", "退款中"],
    "退货页面": ["退货退款", "寄回地址", "填写退货单号"],
    "换货页面": ["申请换货", "换货原因", "提交申请"],
    "购物车页面": ["购物车(3)", "全选", "结算"],
    "店铺页面": ["官方旗舰店", "关注", "店铺评分 4.9"],
    "活动页面": ["满300减50", "限时秒杀", "活动规则"],
    "优惠券领取页面": ["满200减30", "领取优惠券", "已领取"],
    "账户页面": ["会员等级", "收货地址", "账号与安全"],
    "投诉举报页面": ["投诉商家", "问题描述", "提交投诉"],
    "平台介入页面": ["申请平台介入", "平台处理中", "举证"],
    "外部APP截图": ["微信", "短信", "银行扣款通知"],
    "其他类别图片": [],
}
_ELEMENTS = ["顶部导航栏", "返回按钮", "底部操作按钮", "商品缩略图", "价格标签", "输入框", "状态标签", "对话气泡"]
_OBJECTS = ["手机截图", "商品图片", "文字说明", "图标"]


def matches(request: dict) -> bool:
    return bool(request_image_urls(request)) and "信息提取" in request_text(request)


def respond(request: dict, rng: random.Random) -> str:
    seen, _ = _seen_category(request)
    if seen is None:
        info = {"visible_text": [], "objects": ["无法辨认的图像"], "screen_elements": [],
                "scene": "图片内容模糊，无法识别具体场景"}
    else:
        texts = _TEXTS.get(seen.name, [])
        info = {
            "visible_text": texts[: rng.randint(max(1, len(texts) - 1), max(1, len(texts)))] if texts else [],
            "objects": rng.sample(_OBJECTS, 2) if seen.name != "实物拍摄" else ["商品实物", "破损处特写"],
            "screen_elements": rng.sample(_ELEMENTS, 3) if seen.name != "实物拍摄" else [],
            "scene": f"图片展示的是{_describe(seen)}",
        }
    text = json.dumps(info, ensure_ascii=False, indent=None)
    # Models like to wrap JSON in a code fence now and then.
    return f"```json\n{text}\n```" if rng.random() < 0.2 else text
