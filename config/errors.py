"""The product's own error pages (403, 404, 500, 400 and a CSRF failure): Chinese, with the menu.

Each renders `templates/errors/error.html` (extending _base.html) with the request, so a signed-in
user keeps the navigation. If that rendering fails too (the error may be the database being away,
and the menu needs the user), a plain page without the menu is sent instead: an error page must
never raise. Wired in config/urls.py (handler400/403/404/500) and by CSRF_FAILURE_VIEW.
"""
import logging

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

FALLBACK = """<!DOCTYPE html>
<html lang="zh-Hans"><head><meta charset="utf-8"><title>{title} · datafix</title>
<link rel="stylesheet" href="/static/css/app.css"></head>
<body><main class="container"><h1>{title}</h1><p>{text}</p><p><a href="/">返回首页</a></p></main></body></html>"""

TITLES = {
    400: ("请求无效", "服务器无法理解这个请求。"),
    403: ("没有权限", "你没有权限打开这个页面或执行这个操作。"),
    404: ("页面不存在", "找不到这个页面：链接可能有误，或者内容已被删除。"),
    500: ("服务器出错", "服务器处理请求时出错了，管理员可以在日志中看到详情。请稍后再试。"),
}


def _render(request: HttpRequest, status: int, template: str, context: dict | None = None) -> HttpResponse:
    title, text = TITLES.get(status, TITLES[500])
    context = {"error_title": title, "error_text": text, "status": status, **(context or {})}
    try:
        body = render_to_string(template, context, request=request)
    except Exception:  # noqa: BLE001 - e.g. the menu needs the user and the database is away
        logger.exception("error page %s could not be rendered; sending the plain one", status)
        body = FALLBACK.format(title=context["error_title"], text=context["error_text"])
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _render(request, 400, "errors/error.html")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    # Our own PermissionDenied messages are written for the user ("只有管理员可以分配类别。").
    reason = str(exception) if isinstance(exception, PermissionDenied) and str(exception) else ""
    return _render(request, 403, "errors/error.html", {"reason": reason})


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    # Not the exception's text: "No Job matches the given query." is English and internal.
    return _render(request, 404, "errors/error.html", {"path": request.path})


def server_error(request: HttpRequest) -> HttpResponse:
    return _render(request, 500, "errors/error.html")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: most often a form left open past a logout, a session expiry or a restart."""
    return _render(request, 403, "errors/error.html", {
        "refresh": True,
        "error_title": "页面已过期",
        "error_text": "这个表单的安全校验没有通过：页面打开太久、期间重新登录过，或浏览器禁用了 Cookie。"
                      "请刷新页面后重新提交（刚才填写的内容需要重新输入）。",
    })
