"""Test settings: the local ones with fast password hashing; DATABASE_URL picks SQLite or PostgreSQL."""
from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY", default="django-insecure-test-key")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
