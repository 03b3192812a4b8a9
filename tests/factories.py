"""factory-boy factories for the models tests need most."""
import factory
from django.contrib.auth import get_user_model

from pipelines.models import Job, JobKind
from review.models import Assignment, Category, Dataset, Mode, Reasoning, Review, Sample


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-1")
    is_staff = False


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"dataset-{n}")


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    dataset = factory.SubFactory(DatasetFactory)
    name = factory.Sequence(lambda n: f"类别{n}")
    definition = factory.LazyAttribute(lambda o: f"{o.name}的官方定义")
    position = factory.Sequence(lambda n: n)


class SampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sample

    label = factory.SubFactory(CategoryFactory)
    dataset = factory.LazyAttribute(lambda o: o.label.dataset)
    external_id = factory.Sequence(lambda n: f"sample-{n:05d}")
    image = ""


class ReasoningFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reasoning

    sample = factory.SubFactory(SampleFactory)
    mode = Mode.WITH_DEFINITIONS
    predicted_category = factory.LazyAttribute(lambda o: o.sample.label)
    predicted_name = factory.LazyAttribute(lambda o: o.predicted_category.name if o.predicted_category else "")
    is_correct = factory.LazyAttribute(
        lambda o: None if o.predicted_category is None else o.predicted_category.pk == o.sample.label_id
    )
    output = factory.LazyAttribute(lambda o: f"图片显示了相关内容，因此属于{o.predicted_name}。")
    length = factory.LazyAttribute(lambda o: len(o.output))
    model_name = "qwen-vl-72b-instruct"


class ReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Review

    sample = factory.SubFactory(SampleFactory)


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    reviewer = factory.SubFactory(UserFactory)
    category = factory.SubFactory(CategoryFactory)


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    kind = JobKind.CLASSIFICATION
    params = factory.Dict({})
