"""Importing classification results from disk (the team's folders, JSONL manifests) into a dataset;
`import_classification` runs one import, `ClassificationImport` its steps (as the import job does)."""
from .importer import (
    MODE_FOLDER,
    ClassificationImport,
    ImportReport,
    closest_class_names,
    import_classification,
    plan_files,
    resolve_class_name,
)

__all__ = [
    "MODE_FOLDER",
    "ClassificationImport",
    "ImportReport",
    "closest_class_names",
    "import_classification",
    "plan_files",
    "resolve_class_name",
]
