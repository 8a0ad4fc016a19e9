"""Page-number pagination with a client-chosen page size (`pageSize`), capped at 100."""

from rest_framework import pagination
from rest_framework.exceptions import ValidationError

from scheduler.paginators import FleetPaginator


class PageNumberPagination(pagination.PageNumberPagination):
    """`page` (from 1) and `pageSize` (default 20; larger than 100 counts as 100).

    A `pageSize` that is not a positive integer is a 400 rather than silently ignored;
    a page past the end is DRF's 404 "Invalid page." `count` is exact below 10,000 rows and the
    database's estimate above (PostgreSQL; exact on SQLite), and deep pages read ids first
    (FleetPaginator); unlike the admin's, the API's pages have no depth limit.
    """

    django_paginator_class = FleetPaginator

    page_size = 20
    page_size_query_param = "pageSize"
    max_page_size = 100
    page_size_query_description = f"Results per page (default {page_size}; at most {max_page_size})."

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if not raw:  # absent or empty: the default, as for every other query parameter
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({self.page_size_query_param: ["Use a whole number from 1 up."]})
        return min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters
