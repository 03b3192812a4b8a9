"""Imports every module that registers a job kind (see pipelines/jobkinds.py): the modules each app
lists in settings.JOB_KIND_MODULES. A listed module that does not import is a configuration error."""
import importlib

from django.conf import settings

for _name in settings.JOB_KIND_MODULES:
    importlib.import_module(_name)
