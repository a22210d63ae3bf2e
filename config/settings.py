"""Settings for every environment, read from the environment (see .env.example)."""

import math
import os
import warnings
from pathlib import Path

import environ

from config import devstack

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core -------------------------------------------------------------------------------------

DEBUG = env.bool("DEBUG", default=False)
DEVELOPMENT_SECRET_KEY = "insecure-development-key-change-me"  # noqa: S105 (check --deploy flags it)
SECRET_KEY = env("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Reverse proxies in front of us; their X-Forwarded-For entries are trusted (IP allow-lists).
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
# Behind TLS in production: secure cookies, HTTPS redirect, HSTS.
HTTPS = env.bool("HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
# Both commit every subdomain (and, once submitted, the browsers' built-in list) to HTTPS for
# the HSTS year: the operator's decision, so settings, not defaults (README's production set
# turns them on, which `check --deploy` asks for).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if NUM_PROXIES else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

INSTALLED_APPS = [
    # Pilot's look (before the admin: its templates win); it makes admin.site its own site.
    "unfold",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Pilot's second factor: TOTP apps and single-use recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "partnerships",
    "triggers",
    "campaigns",
    "rewards",
]

MIDDLEWARE = [
    "config.errors.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (Pilot's CSS, the API docs' Swagger UI) from the same gunicorn.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Whether the session gave a second factor, then Pilot's gate for the roles that need one.
    "django_otp.middleware.OTPMiddleware",
    "partnerships.second_factor_views.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
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

# Pilot's title, sidebar and look: config/pilot.py.
from .pilot import UNFOLD  # noqa: E402, F401

# --- Database ---------------------------------------------------------------------------------

# While `make run` runs in this checkout, a manage.py command without DATABASE_URL reaches the
# same servers (var/devstack.env, see devstack.recorded_servers). Never looked at when the
# environment (or .env) names a database, as production must, or when HTTPS is on.
_DEVSTACK_SERVERS = {} if "DATABASE_URL" in os.environ or HTTPS else devstack.recorded_servers()
DATABASES = {
    "default": env.db(
        "DATABASE_URL",
        default=_DEVSTACK_SERVERS.get(
            "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
    ),
}
# Persistent connections in web and worker processes.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
_PREPARE = env.str("DATABASE_PREPARE_THRESHOLD", default="off")
DATABASES["default"].setdefault("OPTIONS", {}).update(
    connect_timeout=3,
    # Parameters bound by the server, not quoted into the SQL in Python: psycopg's client-side
    # quoting of a batch's arrays cost more than the queries themselves.
    server_side_binding=True,
    # Statements are not prepared (Django's default): the workers' batch queries, whose
    # arrays change size every time, ran ~15% slower on PostgreSQL's generic plans. The
    # ingest statement prepares itself (triggers/services/ingest.py). A number turns
    # psycopg's automatic preparation on for every statement run that many times.
    prepare_threshold=None if _PREPARE == "off" else int(_PREPARE),
)
# The ingest statement is prepared on each connection (planned once: see triggers/services/
# ingest.py). Behind a pooler that moves a client between server connections per transaction
# (PgBouncer in transaction mode before 1.21, or without max_prepared_statements) a prepared
# statement is not where the next transaction runs: set false there.
DATABASE_PREPARE_INGEST = env.bool("DATABASE_PREPARE_INGEST", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache and Celery broker -----------------------------------------------------------

CELERY_BROKER_URL = env(
    "CELERY_BROKER_URL",
    default=_DEVSTACK_SERVERS.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        # An empty CACHE_URL (as .env.example leaves it) is the broker's too.
        "LOCATION": env("CACHE_URL", default="") or CELERY_BROKER_URL,
        # Deployments sharing one Redis database need prefixes of their own: the workers'
        # wake-up mark (triggers/dispatch.py) is one key per deployment.
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="cr"),
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    },
}

if not CACHES["default"]["LOCATION"].startswith(("redis://", "rediss://", "unix://")):
    # Rate limits and the workers' wake-up mark live there; anything else would fail open on
    # every request, silently (with RabbitMQ as broker, CACHE_URL names a Redis).
    raise environ.ImproperlyConfigured(
        "CACHE_URL must name a Redis (redis://, rediss:// or unix://); it defaults to "
        "CELERY_BROKER_URL, which is not one: set CACHE_URL"
    )

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=1)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=180)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged message after this long (acks_late + a dead worker).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "socket_connect_timeout": 1,
}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Auth, i18n, static -----------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Pilot's second factor (partnerships/second_factor.py): the name authenticator apps show;
# devices' keys are not shown in Pilot's device pages.
OTP_TOTP_ISSUER = "Campaign Rewards Pilot"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Users who sign in to Pilot without a second factor: the demo login of `make run`, which
# config/devstack.py names for its own processes (DEVSTACK_DEMO_LOGIN). Never with HTTPS.
PILOT_SECOND_FACTOR_EXEMPT_USERNAMES = [] if HTTPS else env.list("DEVSTACK_DEMO_LOGIN", default=[])

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# Serve static files straight from the apps (no collectstatic step for `make run`); after
# `manage.py collectstatic`, set it false to serve STATIC_ROOT with far-future caching.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
# Until collectstatic has run STATIC_ROOT does not exist, and the finders serve everything.
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise")

# --- API --------------------------------------------------------------------------------------

# Bodies larger than this are refused with 413 before they are read.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["partnerships.auth.PartnerKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["partnerships.auth.IsPartnershipKey"],
    "DEFAULT_PARSER_CLASSES": ["config.http.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    # OPTIONS is 405 like any undeclared method, as on the ingest fast path (not DRF's
    # metadata, outside the envelope, with the views' docstrings).
    "DEFAULT_METADATA_CLASS": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "NUM_PROXIES": NUM_PROXIES,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Campaign Rewards API",
    "DESCRIPTION": "Send trigger events, follow their evaluation and read rewards.",
    "VERSION": "1.0.0",
    # 3.1: its schemas are JSON Schema 2020-12, the draft the request bodies are validated
    # with, so the served body schemas are the enforced ones (3.0 lacks e.g. propertyNames).
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.require_request_bodies",
        "config.openapi.add_query_examples",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and the docs are public: partners read them before they have a key.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # The management API's choice sets that share a field name with another's.
    "ENUM_NAME_OVERRIDES": {
        "WebhookModesEnum": "rewards.webhooks.models.WebhookEndpoint.Modes",
        "PartnershipStatusEnum": "partnerships.models.Partnership.Status",
        "TriggerStatusEnum": "triggers.models.Trigger.Status",
        "KeyModeEnum": "partnerships.models.ApiKey.Mode",
    },
}

# Partner API keys and compiled schemas are cached in each process; this bounds how long a
# change made in another process (Pilot, a revoke command) can go unseen.
CONFIG_CACHE_CHECK_SECONDS = env.float("CONFIG_CACHE_CHECK_SECONDS", default=1.0)
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
# Per API key, counted in Redis across all web processes; a key's own limit overrides it.
API_RATE_LIMIT_PER_SECOND = env.int("API_RATE_LIMIT_PER_SECOND", default=1000)
BENCH_VIEWS = env.bool("BENCH_VIEWS", default=False)
# Short-lived user tokens for client-side apps (partnerships/user_tokens.py): signed with
# this secret (HS256; by default derived from SECRET_KEY), their lifetime bounded, and their
# own rate limit per user, apart from the keys'.
USER_TOKEN_SECRET = env("USER_TOKEN_SECRET", default="")
USER_TOKEN_MAX_LIFETIME_MINUTES = 1440
USER_TOKEN_RATE_LIMIT_PER_SECOND = env.int("USER_TOKEN_RATE_LIMIT_PER_SECOND", default=10)

# --- Trigger events -------------------------------------------------------------------------

# occurred_at may be this far ahead of our clock.
EVENT_CLOCK_SKEW_SECONDS = env.int("EVENT_CLOCK_SKEW_SECONDS", default=300)
# delay / deliver_at may postpone an event by at most this long.
EVENT_MAX_DELAY_DAYS = env.int("EVENT_MAX_DELAY_DAYS", default=30)
# A web process publishes at most one wake-up message to the workers per interval, and only
# when none is pending (triggers/dispatch.py).
EVENT_WAKE_INTERVAL = env.float("EVENT_WAKE_INTERVAL", default=0.1)
# Events a worker claims per database transaction.
EVENT_BATCH_SIZE = env.int("EVENT_BATCH_SIZE", default=500)
# A draining task hands over to a new message after this long (fairness, bounded tasks).
EVENT_TASK_SECONDS = env.float("EVENT_TASK_SECONDS", default=5.0)
# A wake-up counts as pending (no other is published) from its publication until its task
# starts, or this long at most: longer than a task drains, so that a message waiting for a busy
# worker is not doubled; the longest a lost one (its worker killed holding it) holds others back.
EVENT_WAKE_PENDING_SECONDS = env.int(
    "EVENT_WAKE_PENDING_SECONDS", default=max(10, math.ceil(2 * EVENT_TASK_SECONDS))
)
if max(1, EVENT_TASK_SECONDS) > EVENT_WAKE_PENDING_SECONDS:
    raise environ.ImproperlyConfigured(
        "EVENT_WAKE_PENDING_SECONDS (whole seconds: Redis's expiry) is at least 1 and at least "
        f"EVENT_TASK_SECONDS ({EVENT_TASK_SECONDS:g}): shorter, a message waiting for a busy "
        "worker would be doubled"
    )
# A draining task that finds the queue empty keeps claiming every EVENT_IDLE_POLL_SECONDS until
# this long after its last event before it returns, so an event committed meanwhile (while the
# web process's waker waits out EVENT_WAKE_INTERVAL) is claimed at the next poll instead of the
# next wake-up (issue 13: event -> reward p50 53.5 -> 46.8 ms at half the maximum rate). Idle,
# it costs ~10 empty claims after each burst; 0: a task returns as soon as the queue is empty.
EVENT_IDLE_LINGER_SECONDS = env.float("EVENT_IDLE_LINGER_SECONDS", default=0.1)
EVENT_IDLE_POLL_SECONDS = env.float("EVENT_IDLE_POLL_SECONDS", default=0.01)
# Evaluations an event may start (each claim counts one); then it is failed with its error.
EVENT_MAX_ATTEMPTS = env.int("EVENT_MAX_ATTEMPTS", default=5)
# A batch's claim record whose database session is gone is recovered at once (its worker died:
# a crash, the memory or time limit); one older than this is too, for when a pooler keeps server
# sessions open. Longer than CELERY_TASK_TIME_LIMIT, which no batch outlives.
EVENT_CLAIM_TIMEOUT_SECONDS = env.float("EVENT_CLAIM_TIMEOUT_SECONDS", default=600.0)
# An event whose evaluation failed waits this long before its next attempt, doubled each time.
EVENT_RETRY_DELAY_SECONDS = env.float("EVENT_RETRY_DELAY_SECONDS", default=2.0)

# --- Campaigns --------------------------------------------------------------------------------

# A campaign judges the events that reach us until its end plus its partnership's
# max_event_lateness_days; for a partnership without that bound (NULL), plus this many days.
CAMPAIGN_END_GRACE_DAYS = env.int("CAMPAIGN_END_GRACE_DAYS", default=30)
# Four eyes: whoever submitted or wrote a campaign change may not approve it. Off, an approver
# may approve their own (a one-person team).
CAMPAIGN_APPROVAL_FOUR_EYES = env.bool("CAMPAIGN_APPROVAL_FOUR_EYES", default=True)
# campaign.budget_low (rewards.services.notices): a budget that runs out within this many hours
# at the current burn rate (the faster of the last hour's and the last day's) is announced,
# once per campaign, mode and budget; beat looks every CAMPAIGN_BUDGET_LOW_INTERVAL seconds.
CAMPAIGN_BUDGET_LOW_HOURS = env.float("CAMPAIGN_BUDGET_LOW_HOURS", default=24.0)

# Backtests (rewards.simulation): a run stops after this long with its partial results
# (status timed_out); windows of at most BACKTEST_MAX_DAYS; events read this many per query
# (each chunk reads its users' fact histories once: fewer, larger chunks probe the index less;
# 5,000 cost ~25% less PostgreSQL CPU per event than 2,000, 500 three times more).
BACKTEST_MAX_SECONDS = env.float("BACKTEST_MAX_SECONDS", default=90.0)
BACKTEST_MAX_DAYS = env.int("BACKTEST_MAX_DAYS", default=90)
BACKTEST_CHUNK_SIZE = env.int("BACKTEST_CHUNK_SIZE", default=5000)

# --- Webhooks ---------------------------------------------------------------------------------

# --- Reports ----------------------------------------------------------------------------------

# Events received are counted up to this long ago, and never past the oldest transaction still
# open less this margin (an insert that stalls holds the count back): it covers the time from a
# request's clock reading to its insert, and web hosts' clocks running behind the database's.
REPORTS_RECEIVED_SETTLE_SECONDS = env.float("REPORTS_RECEIVED_SETTLE_SECONDS", default=60.0)
# A local day's figures are summed once it ended this long ago: longer than a batch may take
# between stamping its rewards and committing (the task's hard time limit).
REPORTS_DAY_CLOSE_SECONDS = env.float("REPORTS_DAY_CLOSE_SECONDS", default=900.0)

WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# A delivery is leased to its sender right before it is sent; once the lease has run out (its
# sender may have died) another sender may claim it. Keep it well above one send (at most about
# 3 x WEBHOOK_TIMEOUT_SECONDS).
WEBHOOK_LEASE_SECONDS = env.float("WEBHOOK_LEASE_SECONDS", default=120.0)
# Webhook URLs that resolve to loopback, private or link-local addresses are refused (a partner
# could otherwise make us call our own network and read the answer in the delivery log).
# True for local development and tests, whose receivers run on this machine.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=DEBUG)
# Sent by their own workers, so a slow receiver never holds up evaluation.
CELERY_TASK_ROUTES = {"rewards.tasks.send_due_webhooks": {"queue": "webhooks"}}

# Beat can run on more than one machine: one leads, the others stand by (config/beat.py).
CELERY_BEAT_SCHEDULER = "config.beat:LeaderScheduler"
CELERY_BEAT_SCHEDULE = {
    "dispatch-due-events": {
        "task": "triggers.tasks.dispatch_due_events",
        "schedule": env.float("EVENT_DISPATCH_INTERVAL", default=1.0),
    },
    "send-due-webhooks": {
        "task": "rewards.tasks.send_due_webhooks",
        "schedule": env.float("WEBHOOK_DISPATCH_INTERVAL", default=5.0),
    },
    "end-expired-campaigns": {
        "task": "campaigns.tasks.end_expired_campaigns",
        "schedule": env.float("CAMPAIGN_END_INTERVAL", default=60.0),
    },
    "warn-low-budgets": {
        "task": "rewards.tasks.warn_low_budgets",
        "schedule": env.float("CAMPAIGN_BUDGET_LOW_INTERVAL", default=60.0),
    },
    "count-received-events": {
        "task": "rewards.reports.count_received_events",
        "schedule": env.float("REPORTS_RECEIVED_INTERVAL", default=10.0),
    },
    "close-report-days": {
        "task": "rewards.reports.close_report_days",
        "schedule": env.float("REPORTS_CLOSE_INTERVAL", default=300.0),
    },
    "retire-old-records": {
        "task": "rewards.tasks.retire_old_records",
        "schedule": env.float("RETENTION_INTERVAL", default=86400.0),
    },
}

# --- Retention (rewards/services/retention.py, docs/operations.md) ---------------------------

# Trigger events are kept this many days after they were received, occurred and were evaluated.
# The floor (and default): every event a fact can still read. A fact looks back at most
# FACT_WINDOW_MAX_DAYS from its event's occurred_at; that event may arrive
# EVENT_LATENESS_MAX_DAYS after it occurred (the highest bound a partnership may set), and be
# evaluated up to EVENT_MAX_DELAY_DAYS after it arrived, or replayed by a backtest up to
# BACKTEST_MAX_DAYS after; one more day covers clock skew and a run's own length. An event's
# idempotency key is remembered as long as its event. Events that earned a reward, and events
# not yet evaluated, are never retired.
FACT_WINDOW_MAX_DAYS = 366  # campaigns.compiler's bound; a test holds the two together
EVENT_LATENESS_MAX_DAYS = 366  # Partnership.max_event_lateness_days's bound; likewise
EVENT_RETENTION_MIN_DAYS = (
    FACT_WINDOW_MAX_DAYS
    + EVENT_LATENESS_MAX_DAYS
    + max(EVENT_MAX_DELAY_DAYS, BACKTEST_MAX_DAYS)
    + 1
)
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=EVENT_RETENTION_MIN_DAYS)
if EVENT_RETENTION_DAYS < EVENT_RETENTION_MIN_DAYS:
    raise environ.ImproperlyConfigured(
        f"EVENT_RETENTION_DAYS is at least {EVENT_RETENTION_MIN_DAYS}: the longest fact window "
        f"({FACT_WINDOW_MAX_DAYS}) + the longest lateness ({EVENT_LATENESS_MAX_DAYS}) + the "
        f"longer of EVENT_MAX_DELAY_DAYS ({EVENT_MAX_DELAY_DAYS}) and BACKTEST_MAX_DAYS "
        f"({BACKTEST_MAX_DAYS}) + 1"
    )
# Webhook deliveries that are done (succeeded, failed, cancelled) are kept this many days after
# they were created; pending ones are never retired.
WEBHOOK_DELIVERY_RETENTION_DAYS = env.int("WEBHOOK_DELIVERY_RETENTION_DAYS", default=90)
if WEBHOOK_DELIVERY_RETENTION_DAYS < 7:
    raise environ.ImproperlyConfigured("WEBHOOK_DELIVERY_RETENTION_DAYS is at least 7")
# Rows deleted per transaction (each a short one), and how long one run may go on before it
# hands over to the next (beat runs it every RETENTION_INTERVAL seconds).
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=1000)
RETENTION_RUN_SECONDS = env.float("RETENTION_RUN_SECONDS", default=1500.0)
if RETENTION_BATCH_SIZE < 1 or RETENTION_RUN_SECONDS <= 0:
    raise environ.ImproperlyConfigured("RETENTION_BATCH_SIZE and RETENTION_RUN_SECONDS are > 0")

# --- End users: erasure -----------------------------------------------------------------------

# Keys the hash an erased user's external id becomes (partnerships.pseudonyms). Kept apart from
# SECRET_KEY, which may be rotated: changing this one makes erased external ids usable again.
# Required unless DEBUG or with the development SECRET_KEY (a system check, partnerships.E001);
# unset there, SECRET_KEY keys the hash.
USER_ERASURE_SECRET = env("USER_ERASURE_SECRET", default="")

# --- Metrics (config/metrics.py, docs/operations.md) -----------------------------------------

# /metrics answers scrapes from these networks (the client address as the API's allow-lists see
# it, NUM_PROXIES), or bearing `Authorization: Bearer <METRICS_TOKEN>` when that is set; anyone
# else gets 404.
METRICS_ALLOWED_CIDRS = env.list("METRICS_ALLOWED_CIDRS", default=["127.0.0.0/8", "::1/128"])
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# Several processes (gunicorn workers, Celery's prefork children): a directory where each writes
# its values, summed by /metrics. prometheus_client reads it from the environment when first
# imported; set it in the processes' environment (a process manager's), emptied when the
# processes sharing it all start. Unset: each process keeps its own (tests, development).
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="")
if not PROMETHEUS_MULTIPROC_DIR:  # set but empty would mean files in the working directory
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

# --- Logging ----------------------------------------------------------------------------------

# "json": one JSON object per line, with the trigger events a line is about (config/logs.py);
# "plain" (the default) for development.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise environ.ImproperlyConfigured("LOG_FORMAT is plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One line per request at INFO, with the full URL: a partner's webhook URL may carry a
        # credential in its query.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # One line per task received and succeeded, every second for the scheduler's task.
        "celery.app.trace": {"level": env("CELERY_TASK_LOG_LEVEL", default="WARNING")},
        "celery.worker.strategy": {"level": env("CELERY_TASK_LOG_LEVEL", default="WARNING")},
    },
}
