"""`/metrics`: the scheduler's figures in Prometheus format, read from the database at scrape time."""

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import choose_encoder

from scheduler.metrics import registry


@never_cache
@require_safe
def metrics(request):
    # OpenMetrics when the scraper asks for it (it carries gauge histograms natively).
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(registry), content_type=content_type)
