"""Settings of the test suite: production-like (DEBUG off) with fixed test-only keys.

The database comes from DATABASE_URL like everywhere else (the test command points it at
PostgreSQL); the suite's subprocess tests exercise the real settings module.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "x4Qy2m9n2Ty1Fbf1Vd8o2pXQ0s8x3Hn0J6b4Jb1o5kE=")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test logins
# No collectstatic before tests: serve from the finders, unhashed.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
