"""A password hasher that counts how often it hashes, to prove unknown users cost the same work."""
from django.contrib.auth.hashers import MD5PasswordHasher


class CountingMD5PasswordHasher(MD5PasswordHasher):
    """MD5 (fast, tests only) that counts encode() calls; verify() goes through encode()."""

    calls = 0

    def encode(self, password, salt):
        type(self).calls += 1
        return super().encode(password, salt)
