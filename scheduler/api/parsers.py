"""Request parsing: camelCase JSON in, snake_case out, refusing what strict JSON does not allow."""

import json
import math

from django.conf import settings
from djangorestframework_camel_case.parser import CamelCaseJSONParser
from djangorestframework_camel_case.util import underscoreize
from rest_framework.exceptions import ParseError


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


class StrictCamelCaseJSONParser(CamelCaseJSONParser):
    """CamelCaseJSONParser that refuses NaN, Infinity, overflowing and over-nested input with a 400.

    The stock parser accepts NaN/Infinity (which PostgreSQL and strict JSON output cannot hold)
    and lets a deeply nested body crash with RecursionError.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
            data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
            return underscoreize(data, **self.json_underscoreize)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
