"""`manage.py load_demo`: the demo dataset, users and assignments (idempotent), then the logins."""
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.management.base import BaseCommand

from pipelines.demo import DEMO_SOURCES, load_pipelines_demo
from review.demo import DEMO_SAMPLE_COUNT, demo_logins, demo_source_images, load_demo


class Command(BaseCommand):
    help = "Create the demo dataset (23 classes, ~700 samples with images and reasoning), users and assignments."

    def add_arguments(self, parser):
        parser.add_argument("--sample-count", type=int, default=DEMO_SAMPLE_COUNT, help="for quick tests only")

    def handle(self, *args, sample_count, **options):
        started = time.monotonic()
        result = load_demo(sample_count=sample_count)
        s = result.saved
        self.stdout.write(self.style.SUCCESS(
            f"演示数据集“{result.dataset.name}”就绪（{time.monotonic() - started:.1f} 秒）："
            f"新建样本 {s.samples_created}，更新 {s.samples_updated}；新建推理 {s.reasonings_created}，"
            f"更新 {s.reasonings_updated}；新图片 {result.images_written}；新用户 {len(result.users_created)}；"
            f"新分配 {result.assignments_created}；示例审核 {result.reviews_created}"
        ))
        if result.legacy_dataset:
            self.stdout.write(f"旧版演示数据（旧的类别名）已改名为“{result.legacy_dataset}”，其中的审核保留不动。")
        self.stdout.write("登录（用户名 / 密码）：")
        for username, password, role in demo_logins():
            validate_password(password, user=get_user_model()(username=username))  # passes the validators
            self.stdout.write(f"  {role}  {username} / {password}")
        # Feedback samples, call logs, generation sources (showing the demo's screenshots).
        load_pipelines_demo(stdout=self.stdout, source_images=demo_source_images(len(DEMO_SOURCES)))
