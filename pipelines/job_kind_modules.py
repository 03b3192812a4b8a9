"""Imports every module that registers a job kind (see pipelines/jobkinds.py).

Each area adds its module here; a module that does not exist yet is skipped so areas can land
independently.
"""
import importlib

JOB_KIND_MODULES = (
    "pipelines.classification",
    "pipelines.info_extraction",
    "pipelines.generation",
    "pipelines.datasets.logs",
    "pipelines.datasets.feedback",
    "pipelines.dpo",
    "pipelines.correction_drafts",
    "pipelines.classification_import",
)

for _name in JOB_KIND_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:
        if exc.name != _name:
            raise
