"""Django settings for Superlists: everything comes from the environment (see .env.example)."""

import os
from pathlib import Path

import dj_database_url

from superlists.env import (
    collect_problems,
    env_bool,
    env_int,
    env_list,
    env_required,
    env_str,
    load_dotenv,
    raise_collected_problems,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# A server keeps its configuration in a .env next to manage.py (written by `fab deploy`);
# variables already in the environment win, so a shell can override one for a single run.
DOTENV_FILE = BASE_DIR / ".env"
load_dotenv(DOTENV_FILE)
# Every missing or malformed variable is reported at the end, all in one message.
collect_problems()

DEBUG = not env_bool("DJANGO_DEBUG_FALSE")
STAGING = env_bool("SUPERLISTS_STAGING")

if DEBUG:
    SECRET_KEY = "insecure-key-for-development-only"
    ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
else:
    SECRET_KEY = env_required("DJANGO_SECRET_KEY", "every server needs its own secret key")
    # Older keys still accepted for sessions and signatures, so a rotation logs nobody out.
    SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")
    ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
    if not ALLOWED_HOSTS:
        env_required("DJANGO_ALLOWED_HOSTS", "a server must name the hosts it answers to")

# Peers (besides gunicorn's unix socket, which only nginx can reach) whose X-Real-IP header
# is believed: in development the machine itself; on a server, none unless configured.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", ["127.0.0.1", "::1"] if DEBUG else [])

SITENAME = env_str("SITENAME", "localhost")
# One app host of several behind a balancer: its name, shown in X-Served-By with the pid.
HOST_LABEL = env_str("SUPERLISTS_HOST_LABEL", "")
# Login links are built from this on servers, never from the Host header a client sent. In
# development, unset, they follow the address runserver was asked on (any port).
SITE_URL = env_str("SITE_URL", "" if DEBUG else "http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "superlists",
    "accounts",
    "lists",
]
# The FT-only management commands (create_session, reset_staging) exist only where they
# are meant to run: on a staging server, and in the test run that tests them (TEST_RUNNER).
if STAGING:
    INSTALLED_APPS.append("functional_tests")

MIDDLEWARE = [
    "superlists.middleware.RequestIdMiddleware",
    "superlists.middleware.StagingSiteIdentityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, made safe to log from (see superlists/middleware.py).
    "superlists.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "superlists.middleware.StyledMethodNotAllowedMiddleware",
]

ROOT_URLCONF = "superlists.urls"
WSGI_APPLICATION = "superlists.wsgi.application"

TEMPLATES = [
    {
        # Pages are Jinja2 templates in each app's jinja2/ folder: see superlists/templating.py.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "APP_DIRS": True,
        "OPTIONS": {
            "environment": "superlists.templating.environment",
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "superlists.templating.csrf",
            ],
        },
    },
    {
        # Only the Django admin's own templates, which need Django's template language.
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

# Database: SQLite by default, tuned so several gunicorn workers can write at once.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": (
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "PRAGMA busy_timeout=20000;"
        "PRAGMA foreign_keys=ON;"
    ),
}
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=600,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = SQLITE_OPTIONS
    # Persistent SQLite connections are cheap and keep the WAL pragma set once.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.authentication.PasswordlessAuthenticationBackend"]
LOGIN_URL = "/"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "static")))

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "superlists.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Login links carry a token in their query string: never leak it in a Referer header.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Servers behind TLS turn on the HTTPS-only protections with one switch.
if env_bool("DJANGO_SECURE_HTTPS"):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Only says the site may be preloaded (check --deploy's W021); nothing is submitted.
    SECURE_HSTS_PRELOAD = True

# Email: printed to the console in development; SMTP (required) on a server.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Superlists <noreply@superlists.test>")
if DEBUG and not env_str("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env_required(
        "EMAIL_HOST", "with DJANGO_DEBUG_FALSE set the site must know its SMTP server"
    )
    EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
    EMAIL_TIMEOUT = 10

LOGIN_TOKEN_MAX_AGE = env_int("LOGIN_TOKEN_MAX_AGE", 3600, minimum=1)
LOGIN_EMAILS_PER_HOUR = env_int("LOGIN_EMAILS_PER_HOUR", 5, minimum=1)

LOG_DIR = Path(env_str("LOG_DIR", str(BASE_DIR / "logs")))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request": {"()": "superlists.logs.RequestContextFilter"},
        "one_line": {"()": "superlists.logs.OneLineFilter"},
    },
    "formatters": {
        "plain": {
            "class": "superlists.logs.EscapingFormatter",
            "format": (
                "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s ip=%(client_ip)s "
                "%(method)s %(path)s user=%(user)s] %(message)s"
            ),
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request"],
            "formatter": "plain",
        },
        "errors": {
            "class": "superlists.logs.LazyRotatingFileHandler",
            "filename": str(LOG_DIR / "error.log"),
            "maxBytes": 5 * 1024 * 1024,
            "backupCount": 5,
            "level": "ERROR",
            "filters": ["request"],
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["console", "errors"], "level": "INFO"},
    "loggers": {
        # Django's request errors go through the same handlers, once.
        "django": {"level": "INFO", "propagate": True},
        "django.server": {"level": "INFO", "propagate": True},
        "django.security.DisallowedHost": {"filters": ["one_line"]},
    },
}
# Tests run with settings of their own (a log folder, fast password hashes): see there.
TEST_RUNNER = "superlists.test_runner.TestRunner"

raise_collected_problems()
