"""`/metrics`: the scheduler's figures in Prometheus format, read from the database at scrape time."""

import hmac

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import choose_encoder

from scheduler.metrics import registry


@never_cache
@require_safe
def metrics(request):
    if not _token_accepted(request):
        response = HttpResponse("A bearer token is required (SCHEDULER_METRICS_TOKEN).\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response["Content-Type"] = "text/plain; charset=utf-8"
        return response
    # OpenMetrics when the scraper asks for it (it carries gauge histograms natively).
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(registry), content_type=content_type)


def _token_accepted(request) -> bool:
    """No token configured: open (restrict it at the proxy). Configured: `Authorization: Bearer
    <token>`, compared in constant time, as Prometheus' `authorization` scrape setting sends it."""
    expected = settings.SCHEDULER_METRICS_TOKEN
    if not expected:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())
