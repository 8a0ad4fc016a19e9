"""Base settings: the one place that reads the environment; defaults give zero-setup SQLite mode."""

import logging
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # optional, never committed

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_TZ = True
USE_I18N = True
LANGUAGE_CODE = "en-us"

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
# A connection kept across requests (or across a scheduler's runs) is checked before it is
# reused, so one killed by a failover or an idle-connection reaper is replaced, not failed on.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # libpq notices a dead server or a silent network within seconds instead of TCP's minutes:
    # connect_timeout for new connections, keepalives for idle ones, tcp_user_timeout for sent
    # data nobody acknowledges (milliseconds). Explicit OPTIONS in DATABASE_URL win.
    DATABASES["default"]["OPTIONS"] = {
        "connect_timeout": env.int("DATABASE_CONNECT_TIMEOUT", default=5),
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
        **DATABASES["default"].get("OPTIONS", {}),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the scheduler share the file: wait for locks instead of failing,
    # and take the write lock at BEGIN so a read never has to be upgraded mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "scheduler",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Job changes made while answering a request are audited as made through the admin, the API
    # or the dashboard (scheduler/middleware.py).
    "scheduler.middleware.ChangeSourceMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LOGIN_URL = "admin:login"

LOG_LEVEL = env("LOG_LEVEL", default="INFO").strip().upper() or "INFO"
# What a run keeps of its task function's log records (README: "The logs of each run"): the level,
# and a bound on each run's records and characters (the first and the last half are kept).
SCHEDULER_RUN_LOG_LEVEL = env("SCHEDULER_RUN_LOG_LEVEL", default="INFO").strip().upper() or "INFO"
for _name, _level in (("LOG_LEVEL", LOG_LEVEL), ("SCHEDULER_RUN_LOG_LEVEL", SCHEDULER_RUN_LOG_LEVEL)):
    if not isinstance(logging.getLevelName(_level), int):
        raise ImproperlyConfigured(f"{_name} must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {_level!r}.")
SCHEDULER_RUN_LOG_MAX_RECORDS = env.int("SCHEDULER_RUN_LOG_MAX_RECORDS", default=200)
SCHEDULER_RUN_LOG_MAX_CHARS = env.int("SCHEDULER_RUN_LOG_MAX_CHARS", default=65536)
if SCHEDULER_RUN_LOG_MAX_RECORDS < 2 or SCHEDULER_RUN_LOG_MAX_CHARS < 200:
    raise ImproperlyConfigured("SCHEDULER_RUN_LOG_MAX_RECORDS must be at least 2 and SCHEDULER_RUN_LOG_MAX_CHARS 200.")

# LOG_FORMAT=json writes one JSON object per line (for log shippers); plain is for people.
# Empty counts as unset, as an empty line in a .env file usually means.
LOG_FORMAT = env("LOG_FORMAT", default="plain").strip().lower() or "plain"
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every record gets job_id, execution_id and instance_id ("-" when not about a run).
    "filters": {"context": {"()": "scheduler.logging.ContextFilter"}},
    "formatters": {
        "plain": {
            "class": "scheduler.logging.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s "
            "[job=%(job_id)s execution=%(execution_id)s instance=%(instance_id)s] %(message)s",
        },
        "json": {"()": "scheduler.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
            "level": LOG_LEVEL,
        }
    },
    # The root lets through what the console shows and what runs keep in their logs
    # (SCHEDULER_RUN_LOG_LEVEL): a record below a logger's level is never even created.
    "root": {"handlers": ["console"], "level": min(LOG_LEVEL, SCHEDULER_RUN_LOG_LEVEL, key=logging.getLevelName)},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Scheduler -----------------------------------------------------------------------------
# Modules whose @task_function decorators make up the registry of runnable functions.
SCHEDULER_TASK_MODULES = env.list("SCHEDULER_TASK_MODULES", default=["tasks.functions"])
# A lease (max_instances slot) expires this many seconds after it was last renewed.
SCHEDULER_LOCK_TTL = env.int("SCHEDULER_LOCK_TTL", default=3600)
# How often each scheduler process re-reads the database for changes it was not told about.
SCHEDULER_POLL_INTERVAL = env.float("SCHEDULER_POLL_INTERVAL", default=5.0)
# How far ahead (seconds) a scheduler process claims runs, which still start at their own time:
# the runs of a short window share one claim transaction and its round trips.
SCHEDULER_CLAIM_AHEAD = env.float("SCHEDULER_CLAIM_AHEAD", default=0.2)
# Before a crowd of runs due together (a minute boundary of a large fleet), how many seconds
# ahead a process starts claiming them, so that the boundary itself only has to start them.
SCHEDULER_CLAIM_AHEAD_CROWD = env.float("SCHEDULER_CLAIM_AHEAD_CROWD", default=5.0)
# Runs claimed ahead are handed to the workers at most this often (seconds): each starts at or up
# to this long after its time, and the engine wakes once per tick rather than once per run.
SCHEDULER_START_TICK = env.float("SCHEDULER_START_TICK", default=0.02)
if not 0 <= SCHEDULER_START_TICK <= 0.1:
    raise ImproperlyConfigured("SCHEDULER_START_TICK must be between 0 and 0.1 seconds.")
if not (0 <= SCHEDULER_CLAIM_AHEAD < 1 and SCHEDULER_CLAIM_AHEAD <= SCHEDULER_CLAIM_AHEAD_CROWD <= 60):
    raise ImproperlyConfigured(
        "SCHEDULER_CLAIM_AHEAD must be at least 0 and under 1 second, and SCHEDULER_CLAIM_AHEAD_CROWD "
        "between it and 60 seconds."
    )
# How often each scheduler process records that it is alive; dead after three missed beats.
SCHEDULER_HEARTBEAT_INTERVAL = env.float("SCHEDULER_HEARTBEAT_INTERVAL", default=10.0)
# Threads that run inline task functions in each scheduler process.
SCHEDULER_INLINE_WORKERS = env.int("SCHEDULER_INLINE_WORKERS", default=10)
# How long a stopping scheduler waits for running inline work before giving up on it.
SCHEDULER_SHUTDOWN_TIMEOUT = env.float("SCHEDULER_SHUTDOWN_TIMEOUT", default=30.0)
# Executions older than this many days are deleted by the built-in cleanup job.
# The longest wait before a retry, in seconds, however many attempts failed (retryBackoff doubles).
SCHEDULER_RETRY_BACKOFF_MAX = env.int("SCHEDULER_RETRY_BACKOFF_MAX", default=3600)
SCHEDULER_HISTORY_RETENTION_DAYS = env.int("SCHEDULER_HISTORY_RETENTION_DAYS", default=30)
# Queue for offloaded task functions that do not name one.
SCHEDULER_DEFAULT_QUEUE = env("SCHEDULER_DEFAULT_QUEUE", default="celery")
# PostgreSQL ends a scheduler's session idle this long inside a transaction (a process cut off
# mid-claim), which releases the due rows it had locked for the other processes.
SCHEDULER_DB_IDLE_IN_TRANSACTION_TIMEOUT = env.float("SCHEDULER_DB_IDLE_IN_TRANSACTION_TIMEOUT", default=5.0)
# Longest statement, and longest wait for a row lock, of a scheduler's own sessions.
SCHEDULER_DB_STATEMENT_TIMEOUT = env.float("SCHEDULER_DB_STATEMENT_TIMEOUT", default=10.0)
# An engine database call (claim, heartbeat, recording) still waiting after this long is on a dead
# connection: the scheduler closes it, logs it, and reconnects.
SCHEDULER_DB_OPERATION_TIMEOUT = env.float("SCHEDULER_DB_OPERATION_TIMEOUT", default=15.0)
# Whose clock the scheduler engine schedules by: "database" (the default: one wrong host clock
# can neither fire runs early nor take over a lease) or "host" (trust this host's clock, say for
# a test that fakes it). The offset is measured and reported either way.
SCHEDULER_CLOCK_SOURCE = env("SCHEDULER_CLOCK_SOURCE", default="database")
if SCHEDULER_CLOCK_SOURCE not in ("database", "host"):
    raise ImproperlyConfigured(f"SCHEDULER_CLOCK_SOURCE must be 'database' or 'host', not {SCHEDULER_CLOCK_SOURCE!r}.")
# A scheduler whose clock differs from the database's by more than this says so.
SCHEDULER_CLOCK_SKEW_WARNING = env.float("SCHEDULER_CLOCK_SKEW_WARNING", default=5.0)
# /metrics asks for `Authorization: Bearer <this>` when set (it names jobs); empty: no token asked.
SCHEDULER_METRICS_TOKEN = env("SCHEDULER_METRICS_TOKEN", default="").strip()
# How many of the jobs failing most /metrics names (its one per-job series); 0 for none.
SCHEDULER_METRICS_FAILING_JOBS = env.int("SCHEDULER_METRICS_FAILING_JOBS", default=10)

# The most jobs one dashboard action on many jobs changes in one request (the rest: take it again).
SCHEDULER_BULK_ACTION_LIMIT = env.int("SCHEDULER_BULK_ACTION_LIMIT", default=1000)

# --- Notifications (README: "Notifications and dead-man alerts") -----------------------------
# Email goes through Django's email backend: EMAIL_URL as django-environ reads it, e.g.
# smtp://user:password@mail.example.com:587/?tls=True, or consolemail:// to print them.
vars().update(env.email_url("EMAIL_URL", default="smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="scheduler@localhost")
# Seconds between each scheduler process's passes over new events and due deliveries.
SCHEDULER_NOTIFY_INTERVAL = env.float("SCHEDULER_NOTIFY_INTERVAL", default=5.0)
# At most one notification per job, event and channel in each window of this many seconds (0: one per run).
SCHEDULER_NOTIFY_WINDOW = env.int("SCHEDULER_NOTIFY_WINDOW", default=600)
# A delivery that fails is retried after SCHEDULER_NOTIFY_RETRY_BACKOFF seconds, doubling each time
# (at most an hour), until SCHEDULER_NOTIFY_MAX_ATTEMPTS attempts have failed.
SCHEDULER_NOTIFY_RETRY_BACKOFF = env.float("SCHEDULER_NOTIFY_RETRY_BACKOFF", default=30.0)
SCHEDULER_NOTIFY_MAX_ATTEMPTS = env.int("SCHEDULER_NOTIFY_MAX_ATTEMPTS", default=6)
# Longest wait for an SMTP server or a webhook to answer one delivery.
SCHEDULER_NOTIFY_TIMEOUT = env.float("SCHEDULER_NOTIFY_TIMEOUT", default=10.0)
# Where the dashboard is served, for links in notifications (e.g. https://scheduler.example.com).
SCHEDULER_BASE_URL = env("SCHEDULER_BASE_URL", default="").rstrip("/")

# --- Celery ----------------------------------------------------------------------------------
# No broker (the default) means offloaded task functions run inside the scheduler process.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=None)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Reliability choices, explained in README.md ("Celery workers"): acknowledge after the run,
# take one message at a time (so priorities hold and long runs do not hoard messages), and
# fail a run whose worker process died instead of running it again.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis priorities: 0 (first) to 9 (last), one list per level; see services/offload.py.
    "priority_steps": list(range(10)),
    "sep": ":",
    "queue_order_strategy": "priority",
    # Longer than any run's hard time limit, or Redis would hand the message to a second worker.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=6 * 3600),
}

# --- REST framework --------------------------------------------------------------------------
# The API speaks camelCase JSON both ways (djangorestframework-camel-case); see README "REST API".
REST_FRAMEWORK = {
    # Token first: an anonymous request then gets 401 with `WWW-Authenticate: Token`, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "djangorestframework_camel_case.render.CamelCaseJSONRenderer",
        "djangorestframework_camel_case.render.CamelCaseBrowsableAPIRenderer",
    ],
    # JSON only; the parser also refuses NaN/Infinity and over-nested documents with a 400.
    "DEFAULT_PARSER_CLASSES": ["scheduler.api.parsers.StrictCamelCaseJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "scheduler.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "scheduler.api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Task arguments and results are the user's data: their keys pass through untouched.
JSON_CAMEL_CASE = {
    "JSON_UNDERSCOREIZE": {
        "no_underscore_before_number": False,
        # An audit entry's `changes` names fields in camelCase itself; the values are the user's.
        "ignore_fields": ("args", "kwargs", "result", "changes"),
        "ignore_keys": None,
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Job scheduler API",
    "DESCRIPTION": (
        "Recurring interval and cron jobs, their runs and the scheduler's status. JSON is camelCase "
        "both ways; authenticate with a session or `Authorization: Token <key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files are served by the project (drf-spectacular-sidecar), not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1/scheduler",
    # Separate request and response components: what a client sends is not what it reads back.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "drf_spectacular.contrib.djangorestframework_camel_case.camelize_serializer_fields",
        "scheduler.api.schema.document_empty_query_values",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "scheduler.models.ExecutionStatus",
        "ExecutionTriggerEnum": "scheduler.models.ExecutionTrigger",
        "BackfillOverlapPolicyEnum": ["buffer_all", "allow_all"],
    },
}
