"""The 23 e-commerce customer-service scene classes of the demo dataset.

Shared by `load_demo` (which draws images and writes reasoning) and the LLM simulator (which reads
the class marker drawn into an image and reasons about it), so both agree on names and on which
classes are easily confused — the "definitions overlap" the team wanted to find.
"""
from typing import NamedTuple


class DemoCategory(NamedTuple):
    name: str
    definition: str
    # Names of classes a model plausibly confuses this one with (overlapping definitions).
    confusable: tuple[str, ...]


DEMO_CATEGORIES: tuple[DemoCategory, ...] = (
    DemoCategory("商品分类选项", "图片中显示商品颜色、规格选项", ("商品详情页", "尺码咨询")),
    DemoCategory("换货", "用户申请或咨询更换商品的页面或截图", ("退货退款", "售后进度")),
    DemoCategory("退货退款", "退货申请、退款申请或退款进度页面", ("换货", "售后进度")),
    DemoCategory("物流查询", "快递物流轨迹、运单号、配送状态页面", ("订单详情", "催发货")),
    DemoCategory("订单详情", "订单详情页，含订单号、金额、下单时间和商品", ("物流查询", "支付问题")),
    DemoCategory("支付问题", "支付失败、重复扣款、支付方式异常的页面", ("订单详情",)),
    DemoCategory("发票申请", "发票开具、发票抬头和税号填写页面", ("订单详情",)),
    DemoCategory("优惠券使用", "优惠券、满减、红包的领取或使用页面", ("价格保护", "赠品咨询")),
    DemoCategory("商品质量问题", "商品破损、瑕疵、污渍等实物照片", ("评价晒单", "换货")),
    DemoCategory("尺码咨询", "尺码表、尺码推荐或尺码对照信息", ("商品分类选项",)),
    DemoCategory("商品详情页", "商品主图、卖点介绍、参数等详情页面", ("商品分类选项",)),
    DemoCategory("购物车", "购物车列表、结算前的商品勾选页面", ("订单详情",)),
    DemoCategory("收货地址修改", "收货地址的新增、编辑或选择页面", ("订单详情",)),
    DemoCategory("催发货", "询问发货时间、显示待发货状态的订单", ("物流查询",)),
    DemoCategory("评价晒单", "商品评价、买家晒图或追评页面", ("商品质量问题",)),
    DemoCategory("售后进度", "售后服务单的处理进度或审核状态", ("退货退款", "换货")),
    DemoCategory("账号登录问题", "登录失败、验证码、账号冻结等提示", ("其他",)),
    DemoCategory("价格保护", "价保申请、降价补差价的页面", ("优惠券使用",)),
    DemoCategory("缺货到货通知", "商品缺货提示或到货提醒设置页面", ("商品详情页",)),
    DemoCategory("赠品咨询", "赠品说明、买赠活动或赠品未收到的截图", ("优惠券使用",)),
    DemoCategory("安装维修", "安装预约、上门维修或保修服务页面", ("售后进度",)),
    DemoCategory("聊天记录截图", "用户与客服或商家的聊天对话截图", ("换货", "退货退款", "催发货")),
    DemoCategory("其他", "与以上客服场景均无关的图片", ("聊天记录截图",)),
)

DEMO_CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in DEMO_CATEGORIES)
