"""Helpers for the builder / logs / feedback tests: log folders and feedback files as the team's
tools write them."""
import json
from pathlib import Path


def log_line(prompt="请总结下面的文章。", answer="这是一篇关于春天的文章。" * 10, *, success=True, response_as="dict",
             batch_content=None, model="qwen-72b-chat", **extra) -> str:
    """One line of the team's LLM call logger."""
    call = {"timestamp": "2025-03-01T10:00:00", "model": model, "success": success, **extra}
    if prompt is not None:
        call["prompt"] = prompt
    if batch_content is not None:
        call["current_batch_content"] = batch_content
    if response_as == "dict":
        call["response"] = {"answer": answer, "usage": {"total_tokens": 100}}
    elif response_as == "json_string":
        call["response"] = json.dumps({"answer": answer}, ensure_ascii=False)
    elif response_as == "missing":
        pass
    else:
        call["response"] = response_as
    return json.dumps(call, ensure_ascii=False)


def write_log_folder(root: Path) -> Path:
    """A folder with every kind of line the logger writes, good and bad, in two files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub").mkdir(exist_ok=True)
    lines = [
        log_line("问题一：介绍长城", "长城是中国古代的军事防御工程。" * 8),                   # 1 kept
        log_line(None, "批量回答：" + "内容" * 60, batch_content="第1批：甲乙丙"),              # 2 kept (fallback)
        log_line("问题三：介绍故宫", "故宫是明清两代的皇家宫殿。" * 8, response_as="json_string"),  # 3 kept
        "{这不是 JSON",                                                                        # 4 malformed
        log_line("失败的调用", "x", success=False),                                            # 5 not_successful
        log_line("没有回答", None, response_as="missing"),                                     # 6 no_response
        log_line("answer 为空", ""),                                                           # 7 no_answer
        log_line("", "有回答但没有 prompt"),                                                   # 8 no_prompt
        "",                                                                                    # blank: ignored
        log_line("问题一：介绍长城", "重复的 prompt，另一个回答" * 8),                           # 10 kept (dup prompt)
        "[1, 2, 3]",                                                                           # 11 not_object
    ]
    (root / "calls_2025-03-01.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    gbk = ("问题：GBK 编码的行\n".encode("gbk")
           + (log_line("问题四：介绍黄山", "黄山以奇松怪石云海温泉闻名。" * 8) + "\n").encode("utf-8"))
    (root / "sub" / "old_gbk.jsonl").write_bytes(gbk)
    (root / "notes.txt").write_text("not a log", encoding="utf-8")
    return root


FEEDBACK_ENTRIES = [
    {"instruction": "你好，介绍一下你自己", "input": "", "output": "臣妾是甄嬛。<script>alert(1)</script>", "rating": 5,
     "model_name": "huanhuan-qwen", "feedback_id": "fb-1", "timestamp": "2025-01-02T10:00:00"},
    {"instruction": "今天天气怎么样", "input": "北京", "output": "今日晴好，宜出游。", "rating": 4,
     "model_name": "huanhuan-qwen", "feedback_id": "fb-2", "timestamp": "2025-01-03 11:00:00"},
    {"instruction": "讲个笑话", "input": "", "output": "不会。", "rating": 2, "model_name": "huanhuan-qwen",
     "feedback_id": "fb-3", "timestamp": "2025-01-04T09:00:00"},
    {"instruction": "写一首诗", "input": "", "output": "床前明月光。", "rating": 5, "model_name": "huanhuan-glm",
     "feedback_id": "fb-4", "timestamp": "2025-01-05T09:00:00"},
]


def write_feedback_file(path: Path, entries=None, *, jsonl=True, extra_lines=()) -> Path:
    entries = FEEDBACK_ENTRIES if entries is None else entries
    path.parent.mkdir(parents=True, exist_ok=True)
    if jsonl:
        lines = [json.dumps(e, ensure_ascii=False) for e in entries] + list(extra_lines)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        path.write_text(json.dumps(entries, ensure_ascii=False, indent=2), encoding="utf-8")
    return path
