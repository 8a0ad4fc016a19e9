"""`manage.py ensure_admin`: create a superuser if there is none, printing its password once."""
import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


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
