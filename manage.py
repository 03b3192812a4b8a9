#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.core.management import execute_from_command_line

    from config.startup import skip_serving_checks

    skip_serving_checks(sys.argv)  # a command that serves no page need not import every view (config/startup.py)

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
