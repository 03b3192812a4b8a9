"""Scenes for the job-kind tests: sample images carrying the class marker the simulator reads, and a
demo-like dataset of them (the `scene_dataset` fixture is in fixtures.py)."""
from pathlib import Path

from django.conf import settings
from PIL import Image

from review.image_marker import draw_marker
from review.demo_catalog import DEMO_CATEGORIES
from tests.factories import CategoryFactory, DatasetFactory, SampleFactory


def draw_sample_image(relative: str, index: int | None, *, seed: int = 0) -> str:
    """Write a small PNG carrying class marker `index` (None: no marker) under MEDIA_ROOT."""
    path = Path(settings.MEDIA_ROOT) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    shade = 180 + (seed * 37) % 60
    image = Image.new("RGB", (160, 96), (shade, 200, 220 - (seed * 13) % 50))
    if index is not None:
        draw_marker(image, index)
    image.save(path, "PNG")
    return relative


def make_scene_dataset(*, name: str = "scenes", per_category: int = 2, categories: int = 5):
    """A dataset with the first `categories` demo classes and `per_category` marked samples each."""
    dataset = DatasetFactory(name=name)
    made = []
    for index, demo in enumerate(DEMO_CATEGORIES[:categories]):
        category = CategoryFactory(dataset=dataset, name=demo.name, definition=demo.definition, position=index)
        for n in range(per_category):
            external_id = f"{name}-{index:02d}-{n:03d}"
            image = draw_sample_image(f"scenes/{external_id}.png", index, seed=index * 100 + n)
            made.append(SampleFactory(dataset=dataset, label=category, external_id=external_id, image=image))
    return dataset, made
