"""The paginator of every list that may hold a fleet's worth of rows: the dashboard's, the admin's
and the API's.

Three things Django's Paginator does that cost as much as the table is long, and what this one
does instead:

- the count: a known count when the caller has one (the job tally), else the database's estimate
  for a large list (PostgreSQL's statistics, through the backend), and an exact count for a small
  one or where there is no estimate (SQLite); a list that fits on one page is counted by reading
  that page;
- a deep page: OFFSET reads, and computes the select list of, every row it skips. Pages past the
  first are read as ids first (an index-only walk where the ordering has an index), then only
  those rows are fetched with their annotations;
- page numbers people click: `max_depth` caps how deep page links go (the admin's "last page" of
  fifty million executions would read them all); filters reach older rows.
"""

from functools import cached_property

from django.core.paginator import Paginator
from django.db.models import QuerySet

from scheduler.backends import backend

# How many rows deep the pages of the dashboard and the admin go.
MAX_PAGE_DEPTH = 100_000


class FleetPaginator(Paginator):
    def __init__(self, object_list, per_page, orphans=0, allow_empty_first_page=True, *, count=None, max_depth=None):
        super().__init__(object_list, per_page, orphans=orphans, allow_empty_first_page=allow_empty_first_page)
        self.known_count = count
        self.max_depth = max_depth
        self.estimated = False
        self.first_page_rows = None  # the whole list, when counting it meant reading it

    @cached_property
    def count(self):
        if self.known_count is not None:
            return max(0, self.known_count)
        if isinstance(self.object_list, QuerySet):
            estimate = backend().row_estimate(self.object_list)
            if estimate is not None:
                self.estimated = True
                return estimate
            # A list that fits on one page is counted by reading it, which its page needs anyway:
            # a search that reads every row (a name that matches few jobs) then reads them once.
            head = list(self.object_list[: self.per_page + 1])
            if len(head) <= self.per_page:
                self.first_page_rows = head
                return len(head)
        return Paginator.count.func(self)

    @cached_property
    def num_pages(self):
        pages = Paginator.num_pages.func(self)
        if self.max_depth is not None:
            pages = min(pages, max(1, self.max_depth // self.per_page))
        return pages

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        # Only a count made here may cut the last page short: an estimate, or a known count a
        # moment old, must never hide rows that are there.
        counted = self.known_count is None and not self.estimated
        if counted and top + self.orphans >= self.count:
            top = max(self.count, bottom)
        return self._get_page(self._rows(bottom, top), number, self)

    def _rows(self, bottom: int, top: int):
        rows = self.object_list
        if bottom == 0 and self.first_page_rows is not None:
            return self.first_page_rows[:top]
        if bottom == 0 or not isinstance(rows, QuerySet):
            return list(rows[bottom:top])
        ids = list(rows.values_list("pk", flat=True)[bottom:top])
        by_id = {row.pk: row for row in rows.filter(pk__in=ids)}
        return [by_id[pk] for pk in ids if pk in by_id]
