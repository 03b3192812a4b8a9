"""A tiny machine-readable class marker drawn into demo images.

`load_demo` draws the index of an image's true class (in `review.demo_catalog`) as a row of black
and white cells in the top-left corner; the LLM simulator decodes it, so the simulated vision model
"sees" the true class — even where the dataset label was deliberately planted wrong.
"""
from PIL import Image, ImageDraw

CELL = 6  # pixels per cell side; survives PNG exactly and mild JPEG compression
BITS = 8
ORIGIN = (4, 4)
# Guard cells (black, white) before the bits tell a marked image from an unmarked one.
GUARD = (1, 0, 1)


def draw_marker(image: Image.Image, index: int) -> None:
    """Draw `index` (0–255) into `image` in place."""
    if not 0 <= index < 2**BITS:
        raise ValueError(f"marker index out of range: {index}")
    draw = ImageDraw.Draw(image)
    bits = list(GUARD) + [(index >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    x0, y0 = ORIGIN
    draw.rectangle([x0 - 2, y0 - 2, x0 + CELL * len(bits) + 1, y0 + CELL + 1], fill="white")
    for i, bit in enumerate(bits):
        x = x0 + i * CELL
        draw.rectangle([x, y0, x + CELL - 1, y0 + CELL - 1], fill="black" if bit else "white")


def read_marker(image: Image.Image) -> int | None:
    """The index drawn by `draw_marker`, or None when the image carries no marker."""
    gray = image.convert("L")
    if gray.width < ORIGIN[0] + CELL * (len(GUARD) + BITS) or gray.height < ORIGIN[1] + CELL:
        return None
    x0, y0 = ORIGIN
    values = []
    for i in range(len(GUARD) + BITS):
        cx, cy = x0 + i * CELL + CELL // 2, y0 + CELL // 2
        values.append(1 if gray.getpixel((cx, cy)) < 128 else 0)
    if tuple(values[: len(GUARD)]) != GUARD:
        return None
    index = 0
    for bit in values[len(GUARD):]:
        index = (index << 1) | bit
    return index
