"""Settings, all from environment variables.

The embedded default (no variables set) is SQLite in WAL mode, a file cache and a
filesystem Celery broker under ./var: one machine, no servers to install.
Production sets DATABASE_URL (PostgreSQL), REDIS_URL (broker + cache),
DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS and leaves DJANGO_DEBUG off; see README.md.
"""

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
# The fallback key is only good for a laptop: `check --deploy` flags it (security.W009).
SECRET_KEY = env("DJANGO_SECRET_KEY", "django-insecure-local-development-key-do-not-deploy")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
VAR_DIR = Path(env("STATUSPAGE_VAR_DIR", str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "csp",
    "plumbing",
    "incidents",
    "fleet",
    "public",
    "probes",
    "customers",
    "reports",
    "notifications",
    "reliability",
    "demo",
]

# Proxies in front of the app that append to X-Forwarded-For (plumbing/proxy.py).
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0)

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # A request's database work has a deadline (plumbing/deadline.py).
    "plumbing.deadline.DeadlineMiddleware",
    # The public pages from their snapshot: no database on that path (public/snapshot.py).
    "public.serving.SnapshotMiddleware",
    "plumbing.proxy.TrustedProxyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "statuspage.urls"
WSGI_APPLICATION = "statuspage.wsgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# A web request's database work is cut off after this long: a hung database costs a
# visitor this wait and a 503, never a worker for good (plumbing/deadline.py).
WEB_DATABASE_TIMEOUT_SECONDS = float(env("WEB_DATABASE_TIMEOUT_SECONDS", "10"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DATABASE_CONNECT_TIMEOUT_SECONDS", 3
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, Celery workers and beat all write to the same file: WAL lets readers run
    # beside one writer, IMMEDIATE takes the write lock up front (no deadlock on
    # lock upgrade), and the busy timeout makes writers queue instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 20),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "plumbing.cache.RedisCache",  # Django's, keeping its clients
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "statuspage"),
            # A status page is visited most when things break: never hang on Redis.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
    # The filesystem transport expects its folders to exist.
    for _folder in ("queue", "processed", "control"):
        (_queue_dir / _folder).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 1,
        "socket_timeout": 2,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
if CELERY_BROKER_URL != "filesystem://":
    # A task a killed worker had taken is handed out again after this long (Redis; its
    # default is an hour): the longest any task may run, plus a margin.
    CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = env_int(
        "CELERY_VISIBILITY_TIMEOUT_SECONDS", CELERY_TASK_TIME_LIMIT + 60
    )
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing after a commit (plumbing.broker): a short timeout, then the broker is
# left alone for a while; the periodic sweeps catch up.
BROKER_PUBLISH_TIMEOUT_SECONDS = float(env("BROKER_PUBLISH_TIMEOUT_SECONDS", "1"))
BROKER_BREAKER_SECONDS = env_int("BROKER_BREAKER_SECONDS", 30)
# What Celery's own publishes (beat, tasks queueing tasks) do when the broker is down.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_TIMEZONE = "UTC"
PROBE_INTERVAL_SECONDS = env_int("PROBE_INTERVAL_SECONDS", 30)
CELERY_BEAT_SCHEDULE = {
    # Ongoing impact windows grow every minute; so do the affected-tailnet rows.
    "refresh-ongoing-impacts": {
        "task": "incidents.refresh_ongoing_impacts",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Detection runs when samples arrive; this notices when none arrive any more.
    "probe-silence": {
        "task": "probes.check_silence",
        "schedule": float(PROBE_INTERVAL_SECONDS),
        "options": {"expires": PROBE_INTERVAL_SECONDS * 0.9},
    },
    "probe-rollups": {
        "task": "probes.build_rollups",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Public pages show durations and uptime that grow with time; also catches up
    # changes whose after-commit rebuild could not be queued (broker down).
    "rebuild-snapshot": {
        "task": "public.rebuild_snapshot",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Reports whose after-commit triage could not be queued (broker down).
    "report-sweep": {
        "task": "reports.sweep_untriaged",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "probe-retention": {
        "task": "probes.prune",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # The outbox's sweep: sends what is due (new rows also queue it at once).
    "notifications-deliver": {
        "task": "notifications.deliver",
        "schedule": 10.0,
        "options": {"expires": 9},
    },
    # Forgets lost while the cache was down (plumbing/cache.py): replayed for the web
    # processes that did not see the outage themselves.
    "replay-lost-forgets": {
        "task": "plumbing.replay_lost_forgets",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "notifications-remind": {
        "task": "notifications.remind",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}

# --- Auth, i18n, static ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security (production values unless DEBUG) ----------------------------------------
# Only a proxy we were told about may say the visitor used https: without one, any
# client could send X-Forwarded-Proto and be treated as secure.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXY_HOPS > 0 else None
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# Sessions are read from the cache, kept in the database, and work with the cache down
# (plumbing/sessions.py); a cached copy lives at most SESSION_CACHE_SECONDS.
SESSION_ENGINE = "plumbing.sessions"
SESSION_CACHE_SECONDS = env_int("SESSION_CACHE_SECONDS", 300)
# The signed-in user's row and their memberships are read from the cache for at most
# this long (customers/backends.py, customers/access.py); saves and deletes forget them.
AUTHENTICATION_BACKENDS = ["customers.backends.CachedModelBackend"]
ACCOUNT_CACHE_SECONDS = env_int("ACCOUNT_CACHE_SECONDS", 60)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp) on every response, the snapshot's included
# (public.serving): scripts, styles and everything else from this site only, so no
# inline script or style anywhere. The snapshot serves the same bytes to everyone, so
# a nonce cannot work.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's parsers, with JSON that refuses NaN, Infinity and deep nesting.
    "DEFAULT_PARSER_CLASSES": [
        "plumbing.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_THROTTLE_RATES": {
        "probe_ingest": env("PROBE_INGEST_RATE", "600/min"),
        "operator_api": env("OPERATOR_API_RATE", "300/min"),
        "tailnet_api": env("TAILNET_API_RATE", "120/min"),
        "report_api": env("REPORT_API_RATE", "10/min"),
        "fleet_api": env("FLEET_API_RATE", "600/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Throttles identify clients by X-Forwarded-For behind this many proxies.
    "NUM_PROXIES": TRUSTED_PROXY_HOPS or None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Coordination service status: customer API",
    "DESCRIPTION": "Each tailnet's status, incidents, uptime and latency; its webhooks; "
    "outage reports; and the public status in Atlassian Statuspage's v2 shape. "
    "The operator, probe and fleet APIs are described to staff at /api/staff/docs/.",
    "VERSION": "1",
    # ``<id:…>`` (plumbing.params.IdConverter) is a row id.
    "PATH_CONVERTER_OVERRIDES": {"id": int},
    # Two choice sets are called "status": an incident's and a follow-up's (open, done).
    # Here, not in the staff schema's settings: drf-spectacular reads these once.
    "ENUM_NAME_OVERRIDES": {
        "IncidentStatusEnum": "incidents.models.IncidentStatus",
        "FollowUpStatusEnum": "incidents.models.FollowUpStatus",
    },
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # The public schema covers the customer-facing APIs (customers.views.api_patterns),
    # the staff one (statuspage.api_docs) the rest; their check is a test that
    # generating them warns of nothing. The deploy check would walk every API at once.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
}

# --- Accounts -------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "customers:home"
LOGOUT_REDIRECT_URL = "public:status"
# The demo writes mail to the console; production sets an SMTP backend and its EMAIL_* vars.
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "status@localhost")
# Failed sign-ins per username and address before a pause.
LOGIN_RATE = env("LOGIN_RATE", "5/15min")
# How long an invitation link works.
INVITATION_TTL_HOURS = env_int("INVITATION_TTL_HOURS", 72)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}

# --- Product settings -----------------------------------------------------------------
# How the page names itself in its JSON (Statuspage's page.name / page.id).
STATUSPAGE_NAME = env("STATUSPAGE_NAME", "Coordination service status")
STATUSPAGE_ID = env("STATUSPAGE_ID", "coordination")
# The page's public address; absolute links in snapshots, feeds and JSON use it.
STATUSPAGE_PUBLIC_URL = env("STATUSPAGE_PUBLIC_URL", "")
# The public pages as last rendered, served when the database is slow or down. Each
# web host reads it from its own disk, so the rebuild task must write where it reads.
SNAPSHOT_DIR = Path(env("SNAPSHOT_DIR", str(VAR_DIR / "snapshot")))
# How often each web process looks whether published data changed since its snapshot
# was built, and then rebuilds it in the background (0: leave it to the workers).
SNAPSHOT_FOLLOW_SECONDS = float(env("SNAPSHOT_FOLLOW_SECONDS", "1"))
# A snapshot older than this is rebuilt by the web host that follows it (durations and
# uptime bars grow with time), as beat's periodic rebuild does on the workers.
SNAPSHOT_MAX_AGE_SECONDS = float(env("SNAPSHOT_MAX_AGE_SECONDS", "60"))
# Default control-plane latency above which a shard counts as degraded (per-shard
# override on Shard.latency_threshold_ms).
SHARD_LATENCY_THRESHOLD_MS = env_int("SHARD_LATENCY_THRESHOLD_MS", 1000)
# Probes: a failed probe is a sample, never retried; it gives up after this long.
PROBE_TIMEOUT_SECONDS = float(env("PROBE_TIMEOUT_SECONDS", "5"))
# Incidents opened by detection are drafts for an operator unless this is on.
PROBE_AUTO_PUBLISH = env_bool("PROBE_AUTO_PUBLISH", False)
# Detection runs this long after samples commit, once for a burst of rounds and batches.
PROBE_DETECT_DELAY_SECONDS = float(env("PROBE_DETECT_DELAY_SECONDS", "2"))
# A shard no region has reported on for this many rounds is out of sight: a window
# detection holds open on it ends at its last failing sample (the monitoring's gap
# is not downtime), and its detection starts over when reports come back.
PROBE_SILENCE_ROUNDS = env_int("PROBE_SILENCE_ROUNDS", 3)
PROBE_RAW_RETENTION_DAYS = env_int("PROBE_RAW_RETENTION_DAYS", 14)
# A sample that starts more than this far in the future is refused and counted
# (ProbeRegion.future_refused_total, /metrics): the probe's clock is wrong.
PROBE_MAX_CLOCK_SKEW_SECONDS = env_int("PROBE_MAX_CLOCK_SKEW_SECONDS", 60)
# Regions probed from inside a Celery worker (rounds from beat on the region's queue,
# probes.<slug>) instead of by a probe agent (python -m probes.agent), which is the
# production path: "*" for every active region. Empty (the default): agents only, and
# beat schedules no rounds at all.
PROBE_WORKER_REGIONS = env_list("PROBE_WORKER_REGIONS", "")
if PROBE_WORKER_REGIONS:
    # One small task per such region per round, each on its region's queue.
    CELERY_BEAT_SCHEDULE["probe-rounds"] = {
        "task": "probes.schedule_rounds",
        "schedule": float(PROBE_INTERVAL_SECONDS),
        "options": {"expires": PROBE_INTERVAL_SECONDS * 0.9},
    }
PROBE_ROLLUP_RETENTION_DAYS = env_int("PROBE_ROLLUP_RETENTION_DAYS", 400)
PROBE_SIMULATOR_URL = env("PROBE_SIMULATOR_URL", "http://127.0.0.1:8787")
# Who may read /metrics without a token (a Prometheus on the same host/network).
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")
# Outage reports: a spike of this many reports from this many distinct tailnets and
# this many distinct client addresses (IPv6: /64 networks) on one shard within
# REPORT_SPIKE_WINDOW_MINUTES opens a draft incident (source=reports). Behind a proxy,
# the addresses are the visitors' only with TRUSTED_PROXY_HOPS set.
REPORT_SPIKE_THRESHOLD = env_int("REPORT_SPIKE_THRESHOLD", 5)
REPORT_SPIKE_WINDOW_MINUTES = env_int("REPORT_SPIKE_WINDOW_MINUTES", 10)
# Anonymous reports per client address (IPv6: /64) and per tailnet name as typed, in the
# cache: over either, 429 and nothing saved. Members' and their tailnet tokens' reports
# have a budget per tailnet of their own: over it, saved all the same and flagged. When
# the cache is down, reports are still saved (fail open).
REPORT_RATE_PER_IP = env("REPORT_RATE_PER_IP", "5/10min")
REPORT_RATE_PER_TAILNET = env("REPORT_RATE_PER_TAILNET", "20/10min")
REPORT_RATE_PER_MEMBER_TAILNET = env("REPORT_RATE_PER_MEMBER_TAILNET", "20/10min")
# Publishing the triage task gives up after this long so the form answers at once.
REPORT_PUBLISH_TIMEOUT_SECONDS = float(env("REPORT_PUBLISH_TIMEOUT_SECONDS", "0.5"))
# Notifications: maintenance reminders this long before the start; webhooks time out,
# run this many at once, and never go to loopback unless allowed (the demo allows it).
NOTIFY_MAINTENANCE_REMINDER_MINUTES = env_int("NOTIFY_MAINTENANCE_REMINDER_MINUTES", 60)
NOTIFY_WEBHOOK_TIMEOUT_SECONDS = float(env("NOTIFY_WEBHOOK_TIMEOUT_SECONDS", "5"))
NOTIFY_WEBHOOK_CONCURRENCY = env_int("NOTIFY_WEBHOOK_CONCURRENCY", 20)
NOTIFY_WEBHOOK_ALLOW_LOOPBACK = env_bool("NOTIFY_WEBHOOK_ALLOW_LOOPBACK", False)
# Subscribing: confirmation mails per address, public subscriptions per client address
# (over either, the answer is the same and nothing is sent), test deliveries per
# subscription, and how many webhooks and email recipients one tailnet may have.
NOTIFY_CONFIRM_RATE_PER_ADDRESS = env("NOTIFY_CONFIRM_RATE_PER_ADDRESS", "3/hour")
NOTIFY_SUBSCRIBE_RATE_PER_IP = env("NOTIFY_SUBSCRIBE_RATE_PER_IP", "10/hour")
NOTIFY_TEST_RATE = env("NOTIFY_TEST_RATE", "20/hour")
NOTIFY_TAILNET_WEBHOOKS_MAX = env_int("NOTIFY_TAILNET_WEBHOOKS_MAX", 20)
NOTIFY_TAILNET_RECIPIENTS_MAX = env_int("NOTIFY_TAILNET_RECIPIENTS_MAX", 50)
