"""Web middleware: tells the job services through which part of the site a change comes."""

from django.urls import Resolver404, resolve

from scheduler.enums import ChangeSource
from scheduler.services.audit import change_source

# URL namespaces (config/urls.py) and the change source of the pages under them.
SOURCE_BY_NAMESPACE = {
    "admin": ChangeSource.ADMIN,
    "scheduler-api": ChangeSource.API,
    "scheduler": ChangeSource.DASHBOARD,
}


class ChangeSourceMiddleware:
    """Every job change made while answering a request is audited as made through the admin, the
    API or the dashboard, whichever URL the request is for; views need no code for it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        source = _source_of(request.path_info)
        if source is None:
            return self.get_response(request)
        with change_source(source):
            return self.get_response(request)


def _source_of(path: str) -> str | None:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    for namespace in match.namespaces:
        if namespace in SOURCE_BY_NAMESPACE:
            return SOURCE_BY_NAMESPACE[namespace]
    return None
