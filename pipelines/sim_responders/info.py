"""Simulated structured image descriptions for the info-extraction prompt (JSON answers).

Like the classification responder, it reads the class marker of demo images and describes what
such a screenshot typically shows: visible text, objects, screen elements and a one-line scene.
"""
from __future__ import annotations

import json
import random

from pipelines.sim_responders.classification import _describe, _seen_category
from pipelines.simulator import request_image_urls, request_text

PRIORITY = 20

# Typical content per scene class (a few words each; the rest is derived from the definition).
_TEXTS = {
    "商品分类选项": ["颜色分类", "尺码", "已选：黑色 XL", "加入购物车"],
    "换货": ["申请换货", "换货原因", "提交申请"],
    "退货退款": ["申请退款", "退款金额 ¥129.00", "退货退款"],
    "物流查询": ["运单号 SF1234567890", "运输中", "已签收"],
    "订单详情": ["订单编号 20240501123456", "实付款 ¥89.90", "下单时间"],
    "支付问题": ["支付失败", "请重新支付", "银行卡扣款异常"],
    "发票申请": ["发票抬头", "纳税人识别号", "电子普通发票"],
    "优惠券使用": ["满200减30", "领取优惠券", "已使用"],
    "商品质量问题": ["（实物照片，无文字）"],
    "尺码咨询": ["尺码表", "身高 170cm 建议 M 码", "胸围"],
    "商品详情页": ["月销 1万+", "商品参数", "立即购买"],
    "购物车": ["购物车(3)", "全选", "结算"],
    "收货地址修改": ["收货人", "详细地址", "设为默认地址"],
    "催发货": ["待发货", "预计48小时内发货", "提醒发货"],
    "评价晒单": ["追加评价", "买家秀", "好评"],
    "售后进度": ["售后服务单", "审核中", "处理进度"],
    "账号登录问题": ["验证码错误", "账号已冻结", "登录"],
    "价格保护": ["价保申请", "差价 ¥20.00", "申请价保"],
    "缺货到货通知": ["暂时缺货", "到货通知", "订阅"],
    "赠品咨询": ["赠品", "买一送一", "赠品未收到"],
    "安装维修": ["预约安装", "上门维修", "保修期内"],
    "聊天记录截图": ["您好，请问有什么可以帮您", "我要换货", "客服小蜜"],
    "其他": [],
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
            "objects": rng.sample(_OBJECTS, 2) if seen.name != "商品质量问题" else ["商品实物", "破损处特写"],
            "screen_elements": rng.sample(_ELEMENTS, 3) if seen.name != "商品质量问题" else [],
            "scene": f"图片展示的是{_describe(seen)}",
        }
    text = json.dumps(info, ensure_ascii=False, indent=None)
    # Models like to wrap JSON in a code fence now and then.
    return f"```json\n{text}\n```" if rng.random() < 0.2 else text
