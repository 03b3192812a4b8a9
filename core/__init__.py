"""The bottom layer: what every area of datafix needs and nothing area-specific.

core ← pipelines ← review, with config the project around the three (docs/architecture.md).
Nothing here imports pipelines, review or config; it may use Django itself.
"""
