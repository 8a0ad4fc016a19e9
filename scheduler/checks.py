"""System checks of the scheduler's settings; `manage.py check --deploy` runs the deployment ones."""

from django.conf import settings
from django.core import checks

MIN_METRICS_TOKEN_LENGTH = 32


@checks.register(checks.Tags.security, deploy=True)
def metrics_token_check(app_configs, **kwargs):
    """/metrics names jobs and shows the fleet's health; in production it asks for a token, unless
    it is deliberately left to the proxy (silence scheduler.W001 then)."""
    token = settings.SCHEDULER_METRICS_TOKEN
    if not token:
        return [
            checks.Warning(
                "SCHEDULER_METRICS_TOKEN is not set: /metrics (job names included) answers anyone who can "
                "reach the web process.",
                hint="Set it to a long random value and give Prometheus the same one (authorization: "
                "credentials), or restrict /metrics at the proxy and add 'scheduler.W001' to "
                "SILENCED_SYSTEM_CHECKS.",
                id="scheduler.W001",
            )
        ]
    if len(token) < MIN_METRICS_TOKEN_LENGTH:
        return [
            checks.Warning(
                f"SCHEDULER_METRICS_TOKEN has {len(token)} characters; use at least {MIN_METRICS_TOKEN_LENGTH}.",
                hint="python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
                id="scheduler.W002",
            )
        ]
    return []
