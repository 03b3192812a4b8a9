"""Importing classification results from disk (the team's folders, JSONL manifests) into a dataset;
`import_classification` runs one import, `ClassificationImport` its steps (as the import job does)."""
from .classes import closest_class_names, resolve_class_name
from .importer import ClassificationImport, import_classification
from .planning import MODE_FOLDER, plan_files
from .report import ImportReport

__all__ = [
    "MODE_FOLDER",
    "ClassificationImport",
    "ImportReport",
    "closest_class_names",
    "import_classification",
    "plan_files",
    "resolve_class_name",
]
