#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import gc
import os
import sys


def main():
    collecting = gc.isenabled()
    gc.disable()  # while Django and the apps load: what they make is never garbage (config/startup.py)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.core.management import execute_from_command_line

    from config.startup import resume_collection_when_ready, skip_serving_checks

    if collecting:
        resume_collection_when_ready()

    skip_serving_checks(sys.argv)  # a command that serves no page need not import every view (config/startup.py)

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
