"""Reading a chat request for the responders: the text of its messages, its image URLs, an image
decoded from a `data:` URL."""
from __future__ import annotations

from typing import Any


def content_text(content: Any) -> str:
    """The text of one message's content: a string, or the text of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def request_text(request: dict[str, Any], roles: tuple[str, ...] = ("system", "user")) -> str:
    """All text of the request's messages with the given roles, joined by newlines."""
    parts: list[str] = []
    for message in request.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") not in roles:
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "\n".join(parts)


def request_image_urls(request: dict[str, Any]) -> list[str]:
    """The image URLs (usually `data:` URLs) sent in the request."""
    urls = []
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    image_url = part.get("image_url")
                    url = image_url.get("url") if isinstance(image_url, dict) else image_url
                    if isinstance(url, str):
                        urls.append(url)
    return urls


def decode_data_url_image(url: str):
    """A PIL image from a `data:image/...;base64,` URL, or None if it is not one or is not an image."""
    import base64
    import io

    from PIL import Image, UnidentifiedImageError

    if not url.startswith("data:") or ";base64," not in url:
        return None
    try:
        data = base64.b64decode(url.split(";base64,", 1)[1], validate=False)
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except (ValueError, UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return None
