"""Test-only database router: the "celery_beat" database holds django-celery-beat's tables and nothing else."""

CELERY_BEAT_DATABASE = "celery_beat"


class CeleryBeatRouter:
    def allow_migrate(self, db, app_label, **hints):
        if db == CELERY_BEAT_DATABASE:
            return app_label == "django_celery_beat"
        return None
