"""Quanta settings, read from the environment.

With nothing set, Quanta runs on its embedded default: SQLite under ``var/``, the in-memory
channel layer, tasks run in-process, periodic jobs run by an in-process scheduler and emails
written to ``var/mail/``. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis.
``DJANGO_ENV=production`` refuses to boot with ``DEBUG`` on or without a secret key and hosts.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("QUANTA_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be 'development' or 'production', not {DJANGO_ENV!r}.")
PRODUCTION = DJANGO_ENV == "production"
DEBUG = env.bool("DEBUG", default=not PRODUCTION)


def _development_secret_key() -> str:
    """A random key kept under var/, so sessions survive restarts of a development console."""
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production.")
    SECRET_KEY = env.str("SECRET_KEY", default="")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set (50 characters or more) when DJANGO_ENV=production."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must list the console's host names when DJANGO_ENV=production."
        )
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _development_secret_key()
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_NAME = env.str("QUANTA_SITE_NAME", default="Quanta")
# Where people reach the console: links in emails sent outside a request are built from it.
QUANTA_PUBLIC_URL = env.str("QUANTA_PUBLIC_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "console",
    "console.accounts",
    "products",
    "events",
    "devices",
    "firmware",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "console.middleware.ChunkedBodyLengthMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "console.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "accounts:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.shell",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'quanta.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run while one writer commits; IMMEDIATE takes the write lock up front
        # so concurrent writers wait on the busy timeout instead of failing mid-transaction.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory, so a live server in another process sees the test database; one per
    # test run, so concurrent runs in one checkout do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
    # Keep connections open. With CONN_MAX_AGE=0, every database_sync_to_async call (the gateway's
    # two per handshake, all on one thread) opened a connection, ran init_command and closed it,
    # checkpointing the WAL: half that thread's time (docs/performance.md).
    DATABASES["default"]["CONN_MAX_AGE"] = None
else:
    # Under ASGI each request may run on a new thread, so persistent per-thread connections do not
    # survive between requests; a connection pool does (docs/performance.md measured one new
    # PostgreSQL connection per request without it).
    # No JIT compilation: the fleet-wide firmware queries (targeting.py's correlated subqueries)
    # are costed far above its threshold and spent a third of their time compiling; this workload
    # is many short queries, where JIT never pays (docs/performance.md, Firmware).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
    if env.bool("DATABASE_POOL", default=True):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
            "timeout": env.int("DATABASE_POOL_TIMEOUT", default=10),
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, Celery ---------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Redis pub/sub channels ignore the database number: deployments sharing a Redis server (or
# test runs on other database numbers) must not hear each other's events.
QUANTA_EVENT_CHANNEL = env.str(
    "QUANTA_EVENT_CHANNEL",
    default=f"quanta:events:{urlsplit(REDIS_URL).path.strip('/') or '0'}" if REDIS_URL else "quanta:events",
)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, the time channels_redis
                # blocks in BZPOPMIN: the read timed out first and the consumer waiting on it died
                # (close 1011), one every 5 s (django/channels_redis#422, docs/performance.md).
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": "quanta:asgi",
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "quanta",
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "console.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "quanta"}}

SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL  # the embedded default runs tasks in-process
# Keep a worker's database connections across tasks (closed every 1,000): Celery's Django fixup
# otherwise closes them, and with the connection pool the whole pool, before and after each task,
# which opened three PostgreSQL sessions per task (docs/performance.md, Firmware).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue("default"), Queue("ota"), Queue("webhooks"), Queue("billing")]
CELERY_TASK_ROUTES = {
    "firmware.tasks.*": {"queue": "ota"},
    "integrations.tasks.*": {"queue": "webhooks"},
    "billing.tasks.*": {"queue": "billing"},
}
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_RESULT_EXPIRES = timedelta(hours=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Periodic jobs: run by Celery beat with Redis, by the in-process scheduler otherwise.
CELERY_BEAT_SCHEDULE = {
    "clear-expired-tokens": {
        "task": "console.accounts.tasks.clear_expired_tokens",
        "schedule": crontab(minute=17),
    },
    "prune-audit-log": {
        "task": "console.tasks.prune_audit_log",
        "schedule": crontab(hour=3, minute=41),
    },
}

# --- Email -----------------------------------------------------------------------------------------
MAIL_DIR = VAR_DIR / "mail"
if EMAIL_URL := env.str("EMAIL_URL", default=""):
    _smtp = env.email_url_config(EMAIL_URL)
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _smtp["EMAIL_HOST"],
                "port": _smtp["EMAIL_PORT"],
                "username": _smtp.get("EMAIL_HOST_USER") or None,
                "password": _smtp.get("EMAIL_HOST_PASSWORD") or None,
                "use_tls": _smtp.get("EMAIL_USE_TLS", False),
                "use_ssl": _smtp.get("EMAIL_USE_SSL", False),
                "timeout": 20,
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "console.mail.MailboxBackend"}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Quanta <no-reply@quanta.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Static files ----------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": VAR_DIR / "media"},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Passwords, sessions, security ------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

# Django's Content Security Policy: scripts only from us, with a per-response nonce.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

# --- Internationalisation -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- API ---------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "console.api.authentication.AccessTokenAuthentication",
        "console.api.authentication.ConsoleSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "console.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "EXCEPTION_HANDLER": "console.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Particle's ?format=raw means "the bare value", not a renderer choice.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Quanta Cloud API",
    "DESCRIPTION": "The device cloud API, compatible with the Particle Cloud API (v1).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "console.api.schema.add_non_drf_routes",
    ],
}

# --- OAuth and access tokens ---------------------------------------------------------------------------
OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "console.accounts.oauth.QuantaOAuth2Validator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": 90 * 24 * 3600,
    "REFRESH_TOKEN_EXPIRE_SECONDS": 14 * 24 * 3600,
    "ACCESS_TOKEN_GENERATOR": "console.accounts.tokens.generate_access_token",
    "REFRESH_TOKEN_GENERATOR": "console.accounts.tokens.generate_access_token",
    # Tokens are stored as SHA-256 checksums only; the plain token is shown once, at creation.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    # The official clients log in with the password grant (RFC 9700 discourages it; Particle needs it).
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": False,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "SCOPES": {"*": "Full access", "customer": "A customer's own devices"},
    "DEFAULT_SCOPES": ["*"],
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"] if DEBUG else ["https"],
}
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"  # noqa: S105 (named for migrations)
SILENCED_SYSTEM_CHECKS = [
    # Deliberate, for compatibility with Particle's clients (PARTICLE_API.md §0, §1.3): the CLI and
    # particle-api-js log in with the password grant, and older clients send ?access_token=.
    "oauth2_provider.W002",
    "oauth2_provider.W004",
]
# Client ids the official tools send with the password grant; any secret is accepted for them.
# (`user` is what `particle token create` sends.)
QUANTA_BUILTIN_OAUTH_CLIENTS = ["particle-cli", "CLI2", "particle-api", "particle", "user"]
QUANTA_DEFAULT_TOKEN_SECONDS = 90 * 24 * 3600

# --- Rate limits (Particle's published values; raise them for load tests from one IP) ------------------
QUANTA_LOGIN_IP_FAILURE_LIMIT = env.int("QUANTA_LOGIN_IP_FAILURE_LIMIT", default=10)
QUANTA_LOGIN_IP_LOCKOUT_SECONDS = env.int("QUANTA_LOGIN_IP_LOCKOUT_SECONDS", default=30 * 60)
QUANTA_LOGIN_ACCOUNT_FAILURE_LIMIT = env.int("QUANTA_LOGIN_ACCOUNT_FAILURE_LIMIT", default=100)
QUANTA_LOGIN_ACCOUNT_WINDOW_SECONDS = env.int("QUANTA_LOGIN_ACCOUNT_WINDOW_SECONDS", default=3600)
# Client addresses come from REMOTE_ADDR unless the console sits behind this many trusted proxies.
QUANTA_TRUSTED_PROXY_COUNT = env.int("QUANTA_TRUSTED_PROXY_COUNT", default=0)
QUANTA_TOKEN_LAST_USED_RESOLUTION_SECONDS = 60
QUANTA_AUDIT_RETENTION_DAYS = env.int("QUANTA_AUDIT_RETENTION_DAYS", default=365)

# --- Logging ---------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}, "daphne": {"level": "WARNING"}},
}
QUANTA_INPROCESS_SCHEDULER = env.bool("QUANTA_INPROCESS_SCHEDULER", default=True)
CSRF_FAILURE_VIEW = "console.views.csrf_failure"

# --- Devices and events -----------------------------------------------------------------------------------
QUANTA_DEVICE_HEARTBEAT_SECONDS = env.int("QUANTA_DEVICE_HEARTBEAT_SECONDS", default=30)
QUANTA_DEVICE_HANDSHAKE_TIMEOUT_SECONDS = env.float("QUANTA_DEVICE_HANDSHAKE_TIMEOUT_SECONDS", default=10)
QUANTA_DEVICE_CALL_TIMEOUT_SECONDS = env.float("QUANTA_DEVICE_CALL_TIMEOUT_SECONDS", default=15)
QUANTA_DEVICE_MAX_FRAME_BYTES = 64 * 1024
# Malformed frames tolerated per minute before the gateway closes the connection with 4400.
QUANTA_DEVICE_BAD_FRAME_LIMIT = env.int("QUANTA_DEVICE_BAD_FRAME_LIMIT", default=20)
QUANTA_LAST_HEARD_RESOLUTION_SECONDS = 60
QUANTA_GATEWAY_FLUSH_SECONDS = env.float("QUANTA_GATEWAY_FLUSH_SECONDS", default=5)
QUANTA_CLAIM_CODE_TTL_SECONDS = 24 * 3600
# Importing device ids into a product: one file or request at most.
QUANTA_IMPORT_MAX_IDS = env.int("QUANTA_IMPORT_MAX_IDS", default=100_000)
QUANTA_IMPORT_MAX_BYTES = env.int("QUANTA_IMPORT_MAX_BYTES", default=4 * 1024 * 1024)
# Product firmware uploads: the largest binary accepted (application modules are at most a few MiB).
QUANTA_FIRMWARE_MAX_BYTES = env.int("QUANTA_FIRMWARE_MAX_BYTES", default=8 * 1024 * 1024)
# Firmware updates over the air (docs/device-protocol.md): chunk size and how many chunks may be in
# flight beyond the device's last acknowledgement; how long a silent device keeps its transfer; how
# often progress is written; attempts before an update is left failed, and the first retry's delay
# (doubling after each failure); how long a device that took an update has to come back running it.
QUANTA_OTA_CHUNK_BYTES = env.int("QUANTA_OTA_CHUNK_BYTES", default=4096)
QUANTA_OTA_WINDOW_CHUNKS = env.int("QUANTA_OTA_WINDOW_CHUNKS", default=8)
QUANTA_OTA_STALL_SECONDS = env.float("QUANTA_OTA_STALL_SECONDS", default=30)
QUANTA_OTA_PROGRESS_SECONDS = env.float("QUANTA_OTA_PROGRESS_SECONDS", default=1)
QUANTA_OTA_MAX_ATTEMPTS = env.int("QUANTA_OTA_MAX_ATTEMPTS", default=3)
QUANTA_OTA_RETRY_SECONDS = env.int("QUANTA_OTA_RETRY_SECONDS", default=60)
QUANTA_OTA_RETURN_SECONDS = env.int("QUANTA_OTA_RETURN_SECONDS", default=600)
# Publish limit per device (Particle: 1 event per second on average, bursts of 4).
QUANTA_PUBLISH_RATE_PER_SECOND = env.float("QUANTA_PUBLISH_RATE_PER_SECOND", default=1.0)
QUANTA_PUBLISH_BURST = env.int("QUANTA_PUBLISH_BURST", default=4)
QUANTA_EVENT_DATA_LIMIT = 1024
QUANTA_SUBSCRIBER_BUFFER = env.int("QUANTA_SUBSCRIBER_BUFFER", default=1000)
# The last N events per user and per product that a log opens with.
QUANTA_EVENT_HISTORY_SIZE = env.int("QUANTA_EVENT_HISTORY_SIZE", default=1000)
QUANTA_EVENT_USAGE_FLUSH_SECONDS = env.float("QUANTA_EVENT_USAGE_FLUSH_SECONDS", default=10)
# Server-Sent Events: Particle's clients reconnect after 15 s of silence; spark-server sent a
# keep-alive every 9 s.
QUANTA_SSE_KEEPALIVE_SECONDS = env.float("QUANTA_SSE_KEEPALIVE_SECONDS", default=9)
QUANTA_SSE_STREAMS_PER_IP = env.int("QUANTA_SSE_STREAMS_PER_IP", default=100)
# Connections each server process uses for publishing and stream bookkeeping (requests beyond wait).
QUANTA_REDIS_STREAM_CONNECTIONS = env.int("QUANTA_REDIS_STREAM_CONNECTIONS", default=32)
CELERY_BEAT_SCHEDULE["sweep-stale-device-sessions"] = {
    "task": "devices.tasks.sweep_stale_sessions",
    "schedule": timedelta(seconds=15),
}
# The product overview's chart of devices online: one sample per product per period, kept a week.
QUANTA_ONLINE_SAMPLE_SECONDS = env.int("QUANTA_ONLINE_SAMPLE_SECONDS", default=300)
QUANTA_ONLINE_SAMPLE_RETENTION_DAYS = env.int("QUANTA_ONLINE_SAMPLE_RETENTION_DAYS", default=7)
CELERY_BEAT_SCHEDULE["sample-online-devices"] = {
    "task": "devices.tasks.sample_online_devices",
    "schedule": timedelta(seconds=QUANTA_ONLINE_SAMPLE_SECONDS),
}
# Completed handshakes wait this long for others before the hooks (OTA targeting) take them as one
# batch: a fleet reconnecting at once costs one query per batch, not one per device.
QUANTA_HANDSHAKE_BATCH_SECONDS = env.float("QUANTA_HANDSHAKE_BATCH_SECONDS", default=0.005)
# Firmware updates: retries that are due, and updates whose device never came back.
CELERY_BEAT_SCHEDULE["sweep-firmware-updates"] = {
    "task": "firmware.tasks.sweep_updates",
    "schedule": timedelta(seconds=30),
}
