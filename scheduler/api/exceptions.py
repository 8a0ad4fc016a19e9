"""Turns the service layer's Django ValidationErrors into DRF 400s keyed by the API's field names."""

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.fields import get_error_detail
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

# Service (model) field names whose API name differs. Every key is snake_case here; the
# camelCase renderer turns them into the names clients send (task_function_id -> taskFunctionId).
SERVICE_TO_API_FIELD = {
    "task_function": "task_function_id",
    "job_type": "job_type_id",
    "exclude_calendar": "exclude_calendar_id",
    NON_FIELD_ERRORS: api_settings.NON_FIELD_ERRORS_KEY,
}
# The services refuse to change a job deleted meanwhile with this key; to a client that is a 404.
DELETED_JOB_KEY = "job"


def api_exception_handler(exc, context):
    """DRF's handler, plus: a service ValidationError becomes a 400 (or 404 for a deleted job)."""
    if isinstance(exc, DjangoValidationError):
        exc = service_error_as_api_error(exc)
    return exception_handler(exc, context)


def service_error_as_api_error(exc: DjangoValidationError) -> exceptions.APIException:
    if not hasattr(exc, "error_dict"):
        return exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: get_error_detail(exc)})
    detail = get_error_detail(exc)
    if set(detail) == {DELETED_JOB_KEY}:
        return exceptions.NotFound(detail[DELETED_JOB_KEY][0])
    errors: dict[str, list] = {}
    for field, messages in detail.items():
        errors.setdefault(SERVICE_TO_API_FIELD.get(field, field), []).extend(messages)
    return exceptions.ValidationError(errors)
