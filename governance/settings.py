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
- ``SECRET_ENV_PREFIX``: the only environment names a connection's ``{"$env": NAME}`` secret may
  reference (default ``GOVERNANCE_SECRET_``).
- ``CONNECTOR_FILES_DIR``: the folder under which connections may name files (default ``var/connector-files``).
- ``ALLOW_LINK_LOCAL_TARGETS``: allow webhooks and connections to link-local and cloud metadata
  addresses (default off).
- ``API_RATE_TOKEN``, ``API_RATE_USER``, ``API_RATE_ANON``: API rate limits per token, per
  signed-in browser user, per anonymous address (``1200/min``, ``1200/min``, ``60/min``).
- ``API_RATE_TOKEN_FAILURES``: failed bearer-token authentications allowed per client address
  (default ``20/hour``); beyond it, every bearer request from that address answers 429 with
  ``Retry-After`` until the window ends, even with a valid token.
- ``API_TOKEN_MAX_DAYS``: the longest lifetime of a personal API token (default 365); a token
  created without an expiry expires after it.
- ``LOGIN_FAILURE_LIMIT``, ``LOGIN_LOCKOUT_MINUTES``: failed sign-ins (screen and Django admin)
  after which an account, and separately a client address, is locked out, and for how long
  (defaults 5 and 15). django-axes keeps the attempts in the database.
- ``NUM_PROXIES``: reverse proxies in front of the web process that append to
  ``X-Forwarded-For`` (default 0: the connection's address is the client's).
- ``SECURE_HSTS_SECONDS``, ``SECURE_HSTS_INCLUDE_SUBDOMAINS``: HTTP Strict Transport Security when
  ``DEBUG`` is off (defaults one year, off). A Content-Security-Policy without inline scripts
  is sent too when ``DEBUG`` is off.
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
    "axes",
    "governance",
    "integrations",
    "access",
    "identities",
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
    "csp.middleware.CSPMiddleware",
    # Last: turns a locked-out sign-in into the "too many attempts" page.
    "axes.middleware.AxesMiddleware",
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
                "identities.context_processors.navigation",
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
if CACHES["default"]["BACKEND"].endswith("RedisCache"):
    # A Redis that is down or paused must not hang requests: short socket timeouts (the API then
    # goes on without rate limits, with a warning: governance/api_core.py). ?socket_timeout= overrides.
    CACHES["default"]["OPTIONS"] = {
        "socket_connect_timeout": 1,
        "socket_timeout": 1,
        **_cache.get("OPTIONS", {}),
    }

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

# Sign-in throttling (django-axes) on the sign-in screen and the Django admin: an account, and
# separately a client address, is locked after LOGIN_FAILURE_LIMIT failed sign-ins for
# LOGIN_LOCKOUT_MINUTES. Attempts are kept in the database (no cache needed).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_LOCKOUT_MINUTES", default=15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own: per account and per address
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AXES_CLIENT_IP_CALLABLE = "governance.api_core.client_address"
AXES_VERBOSE = False
# How many reverse proxies in front of the web process append to X-Forwarded-For: 0 trusts only the
# connection's address (REMOTE_ADDR); sign-in lockouts and the API's per-address limits use this.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# Where the home page sends someone who manages nothing: requesting access.
LANDING_URL_NAME = "access:request-catalogue"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="governance@localhost")
# Incoming-webhook URL (Slack-compatible JSON) that receives every notification; integrations may add their own.
NOTIFICATION_WEBHOOK_URL = env.str("NOTIFICATION_WEBHOOK_URL", default="")

# Secrets of connections: an admin may store {"$env": "NAME"} instead of a value; only names with this
# prefix resolve, so no connection can reach the portal's own settings (integrations/catalogue.py).
SECRET_ENV_PREFIX = env.str("SECRET_ENV_PREFIX", default="GOVERNANCE_SECRET_")
if not SECRET_ENV_PREFIX.strip() or not SECRET_ENV_PREFIX.isupper():
    raise SystemExit(
        "error: SECRET_ENV_PREFIX must be a non-empty upper-case prefix such as GOVERNANCE_SECRET_."
    )
# Files and folders a connection may name (CA files, the demo's provisioning folder) must lie under this folder.
CONNECTOR_FILES_DIR = Path(env.str("CONNECTOR_FILES_DIR", default=str(VAR_DIR / "connector-files")))
# Webhooks and connections to link-local and cloud metadata addresses (169.254.169.254...) are refused unless set.
ALLOW_LINK_LOCAL_TARGETS = env.bool("ALLOW_LINK_LOCAL_TARGETS", default=False)

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    # HTTP Strict Transport Security: browsers use HTTPS only for this long (0 turns it off).
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_HSTS_PRELOAD = False
    # Content-Security-Policy (django-csp): scripts and styles from this site only, no inline
    # scripts (the screens' behaviour lives in static/js); inline style attributes are allowed.
    CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {
            "default-src": ["'self'"],
            "script-src": ["'self'"],
            "style-src": ["'self'", "'unsafe-inline'"],
            "img-src": ["'self'", "data:"],
            "font-src": ["'self'", "data:"],
            "connect-src": ["'self'"],
            "object-src": ["'none'"],
            "base-uri": ["'self'"],
            "form-action": ["'self'"],
            "frame-ancestors": ["'none'"],
        }
    }

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
# A broker that stops answering (down, paused) makes sending a job fail within seconds, and the job with
# it, instead of hanging the web request and leaving the job queued with no message.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + 600,
    "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=5.0),
    "socket_connect_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=5.0),
}
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=5.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 1,
    "interval_max": 1,
}
# A running job writes a heartbeat every few seconds; one silent for longer than this many seconds has lost
# its worker (killed, its machine gone) and is failed by the tick and by the next start of the same job.
JOB_HEARTBEAT_LIMIT = env.float("JOB_HEARTBEAT_LIMIT", default=120.0)
# Seconds a sent job may wait for a worker before its message counts as lost and the job is failed.
JOB_QUEUED_LIMIT = env.float("JOB_QUEUED_LIMIT", default=3600.0)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE = {
    # Queues every integration whose discovery or full permission sync is due.
    "tick": {"task": "integrations.tick", "schedule": 60.0},
    # Revokes expired access, expires stale requests, retries failed grants, sends expiry reminders.
    "expire-access": {"task": "access.expire_access", "schedule": 60.0},
}
# Pending access requests nobody decided within this many hours expire.
ACCESS_REQUEST_PENDING_MAX_AGE_HOURS = env.int("ACCESS_REQUEST_PENDING_MAX_AGE_HOURS", default=14 * 24)
# The longest lifetime of a personal API token, in days (governance/tokens.py).
API_TOKEN_MAX_DAYS = env.int("API_TOKEN_MAX_DAYS", default=365)

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
        # Failed bearer-token authentications per client address; beyond it every token from that
        # address answers 429 until the window ends.
        "token_failure": env.str("API_RATE_TOKEN_FAILURES", default="20/hour"),
    },
    "NUM_PROXIES": NUM_PROXIES,
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
        "AccessRequestStatusEnum": "access.models.AccessRequest.Status",
        "AccessTicketStatusEnum": "access.models.AccessTicket.Status",
        "PersonStatusEnum": "identities.models.Person.Status",
    },
}
