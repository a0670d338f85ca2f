"""Settings, read from the environment (django-environ).

Variables (all optional while ``DEBUG`` is on):

- ``DEBUG``: ``true`` for development. Off by default: production is the default.
- ``SECRET_KEY``: Django's signing key. Required when ``DEBUG`` is off.
- ``FIELD_ENCRYPTION_KEY``: one or more comma-separated Fernet keys encrypting
  connection secrets at rest; the first encrypts, all decrypt (key rotation).
  Required when ``DEBUG`` is off.
- ``DATABASE_URL``: e.g. ``postgres://user:pw@host:5432/db``. Unset: a SQLite file
  under ``var/`` (the embedded default).
- ``CELERY_BROKER_URL``: e.g. ``redis://127.0.0.1:6379/0``. Unset: tasks run in-process.
- ``CACHE_URL``: Django's cache, e.g. ``redis://127.0.0.1:6379/1`` (Django's own Redis
  backend). It holds the API's rate-limit counters: with several web processes, point them at
  one Redis so a token has one budget. Unset: memory of each process (the embedded default).
- ``ALLOWED_HOSTS``: comma-separated host names.
- ``EMAIL_URL``: e.g. ``smtp://user:pw@mail:587``; default prints mail to the console.
- ``DEFAULT_FROM_EMAIL``: sender of notifications.
- ``NOTIFICATION_WEBHOOK_URL``: Slack-compatible incoming webhook receiving every notification.
- ``VAR_DIR``: folder of the embedded default's SQLite file and development keys (default ``var/``).

With ``DEBUG`` on and no keys set, development keys are generated once into
``var/dev-keys.env`` (mode 600) so that encrypted data survives restarts.
"""

import secrets
from pathlib import Path

import environ
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# Where the embedded default keeps its SQLite file and development keys.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)


def _dev_keys() -> dict[str, str]:
    """Development keys, generated once and kept in var/dev-keys.env."""
    path = VAR_DIR / "dev-keys.env"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(
            f"SECRET_KEY={secrets.token_urlsafe(50)}\nFIELD_ENCRYPTION_KEY={Fernet.generate_key().decode()}\n"
        )
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _required(name: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return _dev_keys()[name]
    # One clear line, no traceback: SystemExit prints its message to stderr.
    raise SystemExit(
        f"error: {name} is not set. Set it in the environment (DEBUG is off, so no development key is used)."
    )


SECRET_KEY = _required("SECRET_KEY")
FIELD_ENCRYPTION_KEYS = [k.strip() for k in _required("FIELD_ENCRYPTION_KEY").split(",") if k.strip()]
for _key in FIELD_ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise SystemExit(
            "error: FIELD_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes); "
            'generate one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        ) from None

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_filters",
    "django_tables2",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "governance",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "governance.inputs.BadInputMiddleware",  # no NUL in query strings and form fields
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "governance.audit.AuditMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "governance.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "integrations.context_processors.navigation",
            ],
        },
    },
]

WSGI_APPLICATION = "governance.wsgi.application"

# An empty DATABASE_URL means unset: the embedded default.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: wait for a busy writer instead of failing, commit eagerly.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # A second connection to the same database: job progress is committed through it while
    # the job's own work runs in one long transaction (see governance/jobs.py).
    DATABASES["jobs"] = {
        **DATABASES["default"],
        "OPTIONS": dict(DATABASES["default"].get("OPTIONS", {})),
        "TEST": {"MIRROR": "default"},
    }

# The cache: the API's rate-limit counters live here (governance/api_core.py).
CACHE_URL = env.str("CACHE_URL", default="") or "locmemcache://"
try:
    _cache = env.cache_url_config(
        CACHE_URL,
        # Django's own Redis backend (no third-party driver), whatever else is installed.
        backend="django.core.cache.backends.redis.RedisCache"
        if CACHE_URL.partition(":")[0] in ("redis", "rediss")
        else None,
    )
except Exception as exc:  # an unknown scheme or a malformed URL: one clear line
    raise SystemExit(f"error: CACHE_URL is not a cache URL Django understands ({exc}).") from None
# Query options such as ?key_prefix=gov&timeout=600 are top-level settings (environ lower-cases them).
CACHES = {"default": {key.upper(): value for key, value in _cache.items()}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "governance.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Without collectstatic (tests, a bare checkout) fall back to unhashed names instead of failing.
WHITENOISE_MANIFEST_STRICT = False

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="governance@localhost")
# Incoming-webhook URL (Slack-compatible JSON) that receives every notification; integrations may add their own.
NOTIFICATION_WEBHOOK_URL = env.str("NOTIFICATION_WEBHOOK_URL", default="")

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Celery: with no broker, tasks run in-process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not env.str("CELERY_BROKER_URL", default="")
# In process, the broker is Kombu's in-memory transport: nothing is ever sent to a server by accident
# (Celery would otherwise assume AMQP on localhost for the producer it opens even for eager tasks).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3 * 3600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3 * 3600 + 300)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE = {
    # Queues every integration whose discovery or full permission sync is due.
    "tick": {"task": "integrations.tick", "schedule": 60.0},
    # Revokes expired access, expires stale requests, retries failed grants, sends expiry reminders.
    "expire-access": {"task": "integrations.expire_access", "schedule": 60.0},
}
# Pending access requests nobody decided within this many hours expire.
ACCESS_REQUEST_PENDING_MAX_AGE_HOURS = env.int("ACCESS_REQUEST_PENDING_MAX_AGE_HOURS", default=14 * 24)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Once, through the root's handler (Django's own would print each line twice), and refused
        # requests (403, 404) without a traceback: the server's access log has them; errors still show.
        "django": {"handlers": [], "propagate": True},
        "django.request": {"level": "ERROR"},
    },
}

# REST API (governance/api.py, governance/api_core.py): session or personal-token authentication, cursor pages, one error shape.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.api_core.BearerTokenAuthentication",
        "governance.api_core.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["governance.api_core.IsAuthenticatedUser"],
    "DEFAULT_THROTTLE_CLASSES": ["governance.api_core.ApiRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Requests per API token, per signed-in browser user, per anonymous client address.
        "token": env.str("API_RATE_TOKEN", default="1200/min"),
        "user": env.str("API_RATE_USER", default="1200/min"),
        "anon": env.str("API_RATE_ANON", default="60/min"),
    },
    "DEFAULT_PAGINATION_CLASS": "governance.paging.ApiCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["governance.inputs.JSONParser"],  # bounded depth, no NUL
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "governance.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Access governance API",
    "DESCRIPTION": "Integrations, their inventory and policy, jobs and the audit log. "
    "Authenticate with a personal API token (`Authorization: Bearer <token>`, created at `/api/tokens/`) "
    "or the browser session. See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/(api/)?(v3/)?",
    "ENUM_NAME_OVERRIDES": {
        "DurationEnum": "integrations.durations.Duration",
        "AccessRequestStatusEnum": "integrations.models.AccessRequest.Status",
        "AccessTicketStatusEnum": "integrations.models.AccessTicket.Status",
    },
}
