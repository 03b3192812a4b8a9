"""A second, independent bank for the holdout set (holdout.jsonl): written after the checks were tuned
on pairs.jsonl and never tuned on. Different domains and phrasings; same (prompt, chosen, worse) shape."""

GENERAL_ZH = [
    ("高血压患者饮食上要注意什么？",
     "要控制盐的摄入，每天不超过5克；少吃腌制品和加工肉；多吃新鲜蔬菜、水果和全谷物；限制饮酒；保持体重在正常范围。"
     "饮食调整不能代替药物，需要遵医嘱按时服药。",
     "少吃点咸的。"),
    ("劳动合同到期公司不续签，有补偿吗？",
     "有。根据《劳动合同法》第四十六条，劳动合同期满，除用人单位维持或提高原条件续订而劳动者不同意的情形外，用人单位不续签的，"
     "应当向劳动者支付经济补偿，标准是每工作一年支付一个月工资。",
     "要看公司怎么规定。"),
    ("一个长方形长8厘米、宽5厘米，面积是多少？", "面积 = 长 × 宽 = 8 × 5 = 40 平方厘米。", "面积是26平方厘米。"),
    ("用JavaScript写一个函数，返回数组中的最大值。",
     "```javascript\nfunction maxOf(arr) {\n  if (arr.length === 0) return undefined;\n  return Math.max(...arr);\n}\n```\n"
     "对很长的数组可以改用 reduce，避免展开参数过多。",
     "用循环比较一下就行了。"),
    ("请以“秋天”为题写一首现代诗，四行即可。", "秋天是一封慢慢拆开的信，\n银杏把金色写满街角，\n风读着读着就凉了，\n我把思念夹进落叶里。", "秋天来了，树叶黄了，天气凉了，我很想家。"),
    ("基金定投适合什么样的人？",
     "适合有稳定收入、没有大额投资经验、又希望长期积累财富的人。定投通过分批买入摊平成本，不需要择时，但要能坚持三到五年以上，"
     "并能接受中途的账面亏损。",
     "适合想赚钱的人。"),
    ("如何给手机腾出存储空间？",
     "1. 清理微信等聊天软件的缓存和大文件；\n2. 删除不用的应用；\n3. 把照片和视频备份到云端或电脑后删除本地文件；\n4. 清空下载文件夹。",
     "删点照片。"),
    ("唐朝的开国皇帝是谁？", "唐朝的开国皇帝是唐高祖李渊，公元618年建立唐朝。", "唐太宗李世民。"),
    ("解释一下“内卷”这个词。",
     "“内卷”原指一种社会或文化模式发展到一定阶段后停滞不前、只在内部变得更加复杂的现象；现在多用来形容同行之间非理性的过度竞争，"
     "投入越来越多，回报却没有增加。",
     "内卷就是大家都很卷。"),
    ("孩子不爱吃蔬菜怎么办？",
     "可以让孩子参与买菜和做饭，增加兴趣；把蔬菜切成有趣的形状或做成饺子馅；大人以身作则一起吃；不要强迫或用零食做交换，"
     "多尝试几次，孩子的口味会慢慢改变。",
     "逼他吃就行了。"),
    ("把“人工智能”翻译成日语。", "人工知能（じんこうちのう）", "AI。"),
    ("推荐三个适合新手的露营装备。", "一顶三季帐篷、一个舒适温标合适的睡袋、一盏可充电的营地灯。", "帐篷。"),
    ("为什么飞机能飞起来？",
     "机翼的形状和迎角使流过上表面的空气速度比下表面快，上方压强小、下方压强大，产生向上的升力；发动机提供推力让飞机保持足够的速度，"
     "当升力大于重力时飞机就能起飞。",
     "因为飞机有翅膀。"),
    ("写一条朋友圈文案，庆祝公司成立五周年。", "五年，从三个人的小办公室到两百人的团队。感谢每一位同行者，下一个五年，我们继续出发！", "公司五周年快乐。"),
    ("什么是复利？",
     "复利就是“利滚利”：每一期产生的利息加入本金，下一期连同本金一起计息。时间越长，复利带来的增长越明显，比如年化5%的收益，"
     "十四年左右本金就能翻倍。",
     "复利就是利息。"),
    ("请问身份证丢了怎么补办？",
     "带上户口本到户籍所在地或居住地的派出所户籍窗口（很多地方支持异地办理），现场拍照采集指纹，缴纳20元工本费，"
     "一般15到60天可以领取新证；急用的话可以同时申请临时身份证。",
     "去派出所。"),
    ("给下面的句子换一种说法：这部电影太好看了。", "这部电影实在是精彩极了。", "这部电影很好看。"),
    ("从下面的文字中找出所有的城市名：我上个月从成都出发，经过西安，最后到了北京。", "成都、西安、北京", "成都、北京"),
]

GENERAL_EN = [
    ("What should I pack for a three-day hiking trip?",
     "Pack a tent or shelter, a sleeping bag, a water filter and two litres of water capacity, three days of lightweight food, "
     "a map and compass, layers including a rain jacket, a first-aid kit, a headlamp, and sun protection.",
     "Bring some snacks and water."),
    ("How does a vaccine work?",
     "A vaccine shows your immune system a harmless piece or weakened form of a germ. The body makes antibodies and memory "
     "cells against it, so if the real germ appears later the immune system recognises it and responds quickly.",
     "It makes you immune."),
    ("Write a limerick about a cat who loves pizza.",
     "A cat with a taste for the cheese\nwould steal every slice with great ease;\nshe'd purr at the crust,\nleave the box in the dust,\n"
     "and ask for the anchovies, please.",
     "There was a cat who liked pizza a lot."),
    ("What is the difference between a virus and a bacterium?",
     "Bacteria are single-celled living organisms that can reproduce on their own and are often treated with antibiotics. "
     "Viruses are much smaller, cannot reproduce without infecting a host cell, and are not affected by antibiotics.",
     "Viruses are smaller."),
    ("Convert 5 miles to kilometres.", "5 miles is about 8.05 kilometres.", "5 miles is 5000 metres."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa in the early 1500s.", "Michelangelo."),
    ("Give me two tips for writing a good cover letter.",
     "1. Tailor it to the job: mention the company by name and connect two or three of your achievements to what the role "
     "needs.\n2. Keep it to one page and open with a strong first sentence instead of 'I am writing to apply'.",
     "Make it nice."),
    ("How do I undo the last commit in git?",
     "If you haven't pushed yet, `git reset --soft HEAD~1` undoes the commit but keeps your changes staged. If the commit is "
     "already shared, use `git revert HEAD` to create a new commit that reverses it.",
     "Delete the commit."),
    ("What is inflation?",
     "Inflation is the general rise in prices over time, which means each unit of money buys fewer goods and services. "
     "Central banks usually aim to keep it around 2% a year.",
     "Prices go up."),
    ("Paraphrase: The meeting has been postponed until further notice.", "The meeting is delayed until we announce a new date.",
     "The meeting has been postponed."),
]

SERVICE_ZH = [
    ("用户：外卖送了一个多小时还没到，订单显示骑手已取餐。",
     "非常抱歉让您久等了！我这边看到骑手已经在配送途中，预计10分钟内送达。我们已为您申请了5元延误补偿红包，稍后会发放到您的账户。",
     "请您再等等。"),
    ("用户：酒店订单能不能改到下周同一天入住？",
     "可以为您修改。您预订的是可免费取消的房型，我已经帮您查询到下周三仍有同类房间，价格相同。请确认是否改到下周三入住、周四退房？",
     "改不了。"),
]
