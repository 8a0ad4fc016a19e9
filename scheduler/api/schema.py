"""OpenAPI documentation of the error responses each endpoint can give (for drf-spectacular)."""

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.settings import api_settings

from scheduler.api.serializers import ErrorSerializer


def _messages():
    return serializers.ListField(child=serializers.CharField(), required=False)


def field_errors(serializer_class, name: str) -> OpenApiResponse:
    """A 400 naming each offending field of `serializer_class` (camelCase), or `detail` for bad JSON."""
    fields = {field_name: _messages() for field_name in serializer_class().fields}
    fields[api_settings.NON_FIELD_ERRORS_KEY] = _messages()
    fields["detail"] = serializers.CharField(required=False, help_text="Malformed JSON and the like.")
    return OpenApiResponse(
        inline_serializer(name=name, fields=fields),
        description="Invalid input: each offending field with messages saying what to change.",
    )


QUERY_ERRORS = OpenApiResponse(
    {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    description="Invalid query parameters, each with messages.",
)
NOT_AUTHENTICATED = OpenApiResponse(ErrorSerializer, description="No valid session or token.")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="The user lacks the permission this needs.")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such job (or it was deleted), or no such page.")
UNSUPPORTED_MEDIA_TYPE = OpenApiResponse(ErrorSerializer, description="The body is not application/json.")

READ_ERRORS = {401: NOT_AUTHENTICATED, 403: FORBIDDEN}
LIST_ERRORS = {400: QUERY_ERRORS, 404: NOT_FOUND, **READ_ERRORS}
DETAIL_ERRORS = {404: NOT_FOUND, **READ_ERRORS}
WRITE_ERRORS = {**READ_ERRORS, 415: UNSUPPORTED_MEDIA_TYPE}


def document_empty_query_values(result, generator, request, public):
    """drf-spectacular hook: an optional query parameter sent empty (`?search=`) counts as absent.

    That is how the filters and the paginator treat it; `allowEmptyValue` says so in the schema.
    """
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
    return result
