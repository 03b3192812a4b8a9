"""Static files storage for production: whitenoise's compressed, hashed files."""
from whitenoise.storage import CompressedManifestStaticFilesStorage


def _without_source_maps(patterns):
    kept = []
    for glob, rules in patterns:
        rules = tuple(rule for rule in rules if "sourceMappingURL" not in (rule[0] if isinstance(rule, tuple) else rule))
        kept.append((glob, rules))
    return tuple(kept)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashes and compresses static files, leaving `sourceMappingURL` comments untouched.

    Vendored minified files (Chart.js) point at source maps we do not ship; rewriting those
    comments makes collectstatic fail on the missing .map, and browsers only fetch maps in devtools.
    """

    patterns = _without_source_maps(CompressedManifestStaticFilesStorage.patterns)
