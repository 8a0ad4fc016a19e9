"""`manage.py ensure_admin`: create a superuser if there is none, printing its password once."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create a superuser when none exists. The name and password come from "
        "DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_PASSWORD, or default to 'admin' and a "
        "generated password that is printed once. Does nothing if a superuser exists."
    )

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("A superuser already exists; not creating another.")
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        if User.objects.filter(username=username).exists():
            raise CommandError(
                f"A user named {username!r} exists but is not a superuser. Make it one "
                f"(manage.py shell) or set DJANGO_SUPERUSER_USERNAME to another name."
            )
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(12)
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        User.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(self.style.SUCCESS(f"Created superuser {username!r}."))
        if generated:
            self.stdout.write(
                f"  username: {username}\n  password: {password}\n"
                "  (shown once; set DJANGO_SUPERUSER_PASSWORD to choose it yourself)"
            )
