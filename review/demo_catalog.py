"""The 23 e-commerce customer-service scene classes of the demo dataset: the names the team's batch
script lists (seed 004; 商品分类选项 and its definition come from the seed itself), with definitions
written for them.

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
    DemoCategory("商品分类选项", "图片中显示商品颜色、规格选项",  # the seed's own definition
                 ("商品详情页截图", "购物车页面")),
    DemoCategory("实物拍摄", "图片中显示用户用手机拍摄的商品实物照片而非屏幕截图，如收到的商品、破损或瑕疵处",
                 ("商品头图", "其他类别图片")),
    DemoCategory("商品头图", "图片中显示商品的主图或头图：白底或场景化的商品展示图，常带促销文字",
                 ("商品详情页截图", "实物拍摄")),
    DemoCategory("商品详情页截图", "图片中显示商品详情页：价格、销量、卖点介绍、规格参数和立即购买按钮",
                 ("商品头图", "商品分类选项", "店铺页面")),
    DemoCategory("下单过程中出现异常", "图片中显示下单或提交订单时的错误提示，如库存不足、无法提交、购买失败弹窗",
                 ("支付页面", "购物车页面")),
    DemoCategory("订单详情页面", "图片中显示某个订单的详情：订单号、商品、实付金额、下单时间和订单状态",
                 ("物流跟踪页面", "支付页面", "退款页面")),
    DemoCategory("支付页面", "图片中显示收银台或支付结果：支付方式、支付金额、支付成功或失败的提示",
                 ("下单过程中出现异常", "订单详情页面")),
    DemoCategory("评论区截图页面", "图片中显示商品评价区：买家评论、晒图、追评和评分",
                 ("商品详情页截图", "实物拍摄")),
    DemoCategory("物流列表页面", "图片中显示多个包裹的物流列表，每行一个包裹及其简要状态",
                 ("物流跟踪页面", "订单详情页面")),
    DemoCategory("物流跟踪页面", "图片中显示单个包裹的物流轨迹：运单号、快递公司和按时间排列的运输节点",
                 ("物流列表页面", "物流异常页面")),
    DemoCategory("物流异常页面", "图片中显示物流异常：包裹长时间未更新、退回、丢件、拒收或派送失败的提示",
                 ("物流跟踪页面", "投诉举报页面")),
    DemoCategory("退款页面", "图片中显示仅退款的申请或进度：退款金额、退款原因和退款状态",
                 ("退货页面", "换货页面", "平台介入页面")),
    DemoCategory("退货页面", "图片中显示退货退款的申请或进度：寄回地址、退货运单号和商家收货状态",
                 ("退款页面", "换货页面")),
    DemoCategory("换货页面", "图片中显示换货的申请或进度：换货原因、新规格的选择以及寄回与寄出状态",
                 ("退货页面", "退款页面")),
    DemoCategory("购物车页面", "图片中显示购物车：多件商品的勾选、数量、合计金额和结算按钮",
                 ("商品分类选项", "下单过程中出现异常")),
    DemoCategory("店铺页面", "图片中显示店铺首页或店铺信息：店铺名、关注人数、店铺评分和商品列表",
                 ("活动页面", "商品详情页截图")),
    DemoCategory("活动页面", "图片中显示促销活动会场：满减、秒杀、拼团等活动规则和活动商品",
                 ("优惠券领取页面", "店铺页面")),
    DemoCategory("优惠券领取页面", "图片中显示优惠券或红包：面额、使用门槛、有效期和领取或使用按钮",
                 ("活动页面", "支付页面")),
    DemoCategory("账户页面", "图片中显示个人中心或账户设置：头像昵称、会员等级、收货地址、账号与安全",
                 ("其他类别图片", "订单详情页面")),
    DemoCategory("投诉举报页面", "图片中显示对商家或商品的投诉、举报入口或投诉处理进度",
                 ("平台介入页面", "物流异常页面")),
    DemoCategory("平台介入页面", "图片中显示售后纠纷中申请平台客服介入，或平台的处理进度和举证要求",
                 ("投诉举报页面", "退款页面")),
    DemoCategory("外部APP截图", "图片中显示其他应用的截图，如聊天软件、短信、银行或快递 APP，而非本平台页面",
                 ("其他类别图片", "物流跟踪页面")),
    DemoCategory("其他类别图片", "图片与以上电商客服场景均无关，如风景、自拍、表情包或无法辨认的图片",
                 ("外部APP截图", "实物拍摄")),
)

DEMO_CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in DEMO_CATEGORIES)
# What a model answers when it cannot see any scene in the image.
DEMO_OTHER_CATEGORY = "其他类别图片"
