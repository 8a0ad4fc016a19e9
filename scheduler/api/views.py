"""API views: they check the shape of the input, call the service layer or a selector, and render."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView, get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from scheduler import selectors
from scheduler.api import schema
from scheduler.api.filters import ExecutionFilter, JobFilter, TaskFunctionFilter
from scheduler.api.permissions import CanReadCalendars, CanReadJobs, CanReadTaskFunctions, JobPermissions
from scheduler.api.serializers import (
    AuditEntrySerializer,
    BackfillResultSerializer,
    BackfillSerializer,
    CalendarSerializer,
    CronPreviewQuerySerializer,
    CronPreviewSerializer,
    ExecutionDetailSerializer,
    ExecutionSerializer,
    JobActionSerializer,
    JobPreviewQuerySerializer,
    JobPreviewSerializer,
    JobSerializer,
    JobWriteSerializer,
    SchedulerStatusSerializer,
    TaskFunctionSerializer,
)
from scheduler.enums import ExecutionStatus
from scheduler.models import JobAuditEntry, JobExecution, ScheduledJob, TaskFunction
from scheduler.services.backfills import job_backfill
from scheduler.services.job_actions import JOB_ACTION_NAMES_IN_WORDS, job_action_apply, job_action_require
from scheduler.services.jobs import job_create, job_delete, job_update


def active_job_or_404(job_id) -> ScheduledJob:
    """The active job with this id (as listed), or a 404 for a missing, deleted or malformed id."""
    try:
        job = selectors.job_get(job_id)
    except (TypeError, ValueError, DjangoValidationError):
        job = None
    if job is None:
        raise NotFound("No job with this id (it may have been deleted).")
    return job


JOB_WRITE_ERRORS = schema.field_errors(JobWriteSerializer, "JobValidationError")
JOB_ACTION_ERRORS = schema.field_errors(JobActionSerializer, "JobActionValidationError")
BACKFILL_ERRORS = schema.field_errors(BackfillSerializer, "BackfillValidationError")


@extend_schema_view(
    list=extend_schema(
        summary="List active jobs",
        responses={200: JobSerializer(many=True), **schema.LIST_ERRORS},
    ),
    retrieve=extend_schema(summary="One job", responses={200: JobSerializer, **schema.DETAIL_ERRORS}),
    create=extend_schema(
        summary="Create a job",
        request=JobWriteSerializer,
        responses={201: JobSerializer, 400: JOB_WRITE_ERRORS, **schema.WRITE_ERRORS},
    ),
    update=extend_schema(
        summary="Replace a job (fields left out get their defaults)",
        request=JobWriteSerializer,
        responses={200: JobSerializer, 400: JOB_WRITE_ERRORS, 404: schema.NOT_FOUND, **schema.WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change some fields of a job",
        request=JobWriteSerializer,
        responses={200: JobSerializer, 400: JOB_WRITE_ERRORS, 404: schema.NOT_FOUND, **schema.WRITE_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a job (soft delete: its history stays)",
        responses={204: None, **schema.DETAIL_ERRORS},
    ),
)
class JobViewSet(viewsets.GenericViewSet):
    """Scheduled jobs: create, list, read, change, delete, and act on (trigger, pause, ...)."""

    permission_classes = [JobPermissions]
    lookup_value_regex = "[^/]+"  # any id reaches the view, which answers 404 in JSON
    serializer_class = JobSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = JobFilter

    def get_queryset(self):
        return selectors.job_list()

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return JobWriteSerializer
        return self.serializer_class

    def get_object(self):
        """The active job named in the URL, or 404 (list filters do not apply to it)."""
        job = active_job_or_404(self.kwargs["pk"])
        self.check_object_permissions(self.request, job)
        return job

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(JobSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(JobSerializer(self.get_object()).data)

    def create(self, request):
        serializer = JobWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = job_create(user=request.user, **serializer.validated_data)
        return Response(self._representation(job), status=status.HTTP_201_CREATED)

    def update(self, request, pk=None):
        return self._update(request, partial=False)

    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        job = self.get_object()
        serializer = JobWriteSerializer(job, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        job = job_update(job, user=request.user, **serializer.validated_data)
        return Response(self._representation(job))

    def destroy(self, request, pk=None):
        job_delete(self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary=f"{JOB_ACTION_NAMES_IN_WORDS.capitalize()} a job",
        description=(
            "trigger records one manual run now (a scheduler process picks it up within a second), with "
            "`args`/`kwargs` instead of the job's if given, and answers 202 with that execution. cancel "
            "(`executionId` names the run) answers 200 with the run once it is cancelled (it was waiting or "
            "not yet claimed) or 202 while it is being stopped (it shows cancelRequested until it ends). "
            "The other actions answer 200 with the job. trigger needs the 'Can trigger a manual run' "
            "permission, cancel 'Can cancel a run', the others the change permission."
        ),
        request=JobActionSerializer,
        responses={
            200: JobSerializer,
            202: ExecutionSerializer,
            400: JOB_ACTION_ERRORS,
            404: schema.NOT_FOUND,
            **schema.WRITE_ERRORS,
        },
    )
    @action(detail=True, methods=["post"], url_path="action", url_name="action")
    def job_action(self, request, pk=None):
        job = self.get_object()
        serializer = JobActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        requested = serializer.validated_data["action"]
        job_action_require(request.user, requested)
        data = serializer.validated_data
        outcome = job_action_apply(
            job,
            requested,
            user=request.user,
            reason=data["reason"],
            execution_id=data.get("execution_id"),
            args=data.get("args"),
            kwargs=data.get("kwargs"),
        )
        if isinstance(outcome, JobExecution):
            # trigger: the run it asked for; cancel: the run, 202 while it is still being stopped.
            done = outcome.status == ExecutionStatus.CANCELLED
            return Response(
                ExecutionSerializer(outcome).data, status=status.HTTP_200_OK if done else status.HTTP_202_ACCEPTED
            )
        return Response(self._representation(outcome))

    @extend_schema(
        summary="Backfill: run the job's fire times in a past range",
        description=(
            "Queues a run (trigger backfill) of each fire time of the job in (start, end] that has not run, "
            "computed as the scheduler computes them (window and calendar included). With overlapPolicy "
            "buffer_all (default) they run one after another in fire-time order within max_instances slots of "
            "their own, never delaying the live schedule; allow_all starts them all at once. They are never "
            "missed. 400 for a range reaching into the future, reversed or empty, or holding more than 10,000 "
            "fire times. dryRun counts without queueing. Needs the 'Can trigger a manual run' permission."
        ),
        request=BackfillSerializer,
        responses={
            202: BackfillResultSerializer,
            400: BACKFILL_ERRORS,
            404: schema.NOT_FOUND,
            **schema.WRITE_ERRORS,
        },
    )
    @action(detail=True, methods=["post"], url_path="backfill", url_name="backfill")
    def backfill(self, request, pk=None):
        job = self.get_object()
        serializer = BackfillSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        outcome = job_backfill(
            job,
            data["start"],
            data["end"],
            user=request.user,
            overlap_policy=data["overlap_policy"],
            dry_run=data["dry_run"],
        )
        result = {"queued": outcome.queued, "already_ran": outcome.already_ran, "dry_run": data["dry_run"]}
        return Response(BackfillResultSerializer(result).data, status=status.HTTP_202_ACCEPTED)

    @staticmethod
    def _representation(job):
        """The job as GET shows it (with the last execution), read back after a write."""
        return JobSerializer(selectors.job_get(job.pk)).data


@extend_schema(
    summary="A job's executions, newest first",
    parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The job's id.")],
    responses={200: ExecutionSerializer(many=True), **schema.LIST_ERRORS},
)
class JobHistoryView(ListAPIView):
    """The executions of one active job, newest first, filterable by status and trigger."""

    permission_classes = [CanReadJobs]
    serializer_class = ExecutionSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = ExecutionFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no job in hand
            return JobExecution.objects.none()
        return selectors.job_execution_list(active_job_or_404(self.kwargs["pk"]))


def any_job_or_404(job_id) -> ScheduledJob:
    """The job with this id, deleted or not, or a 404 (also for a malformed id)."""
    try:
        job = selectors.job_any_get(job_id)
    except (TypeError, ValueError, DjangoValidationError):
        job = None
    if job is None:
        raise NotFound("No job with this id.")
    return job


@extend_schema(
    summary="A job's audit trail, newest first",
    description=(
        "Every change to the job: create, edit (the fields before and after), delete, pause, resume, "
        "enable, disable, trigger and any other action, with who made it, when, and through what "
        "(admin, api, dashboard, command_line, code_sync, scheduler, code). A deleted job keeps its trail."
    ),
    parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The job's id.")],
    responses={200: AuditEntrySerializer(many=True), **schema.LIST_ERRORS},
)
class JobAuditView(ListAPIView):
    """The audit trail of one job (deleted jobs included), newest first."""

    permission_classes = [CanReadJobs]
    serializer_class = AuditEntrySerializer
    filter_backends = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return JobAuditEntry.objects.none()
        return selectors.job_audit_list(any_job_or_404(self.kwargs["pk"]).pk)


class ExecutionDetailView(APIView):
    """One execution with its logs, arguments, outcome and the timeline of its states."""

    permission_classes = [CanReadJobs]

    @extend_schema(
        summary="One execution: logs, arguments, result, error, traceback, timeline",
        description="Executions of deleted jobs stay readable, as their history does.",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The execution's id.")],
        responses={200: ExecutionDetailSerializer, **schema.DETAIL_ERRORS},
    )
    def get(self, request, pk):
        try:
            execution = selectors.execution_get(pk)
        except (TypeError, ValueError, DjangoValidationError):
            execution = None
        if execution is None:
            raise NotFound("No execution with this id (history retention may have deleted it).")
        return Response(ExecutionDetailSerializer(execution).data)


@extend_schema_view(
    list=extend_schema(
        summary="Registered task functions (what a job may run)",
        responses={200: TaskFunctionSerializer(many=True), **schema.LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="One task function",
        responses={200: TaskFunctionSerializer, **schema.DETAIL_ERRORS},
    ),
)
class TaskFunctionViewSet(viewsets.ReadOnlyModelViewSet):
    """The task functions of the code registry; inactive ones are no longer registered."""

    permission_classes = [CanReadTaskFunctions]
    lookup_value_regex = "[^/]+"
    serializer_class = TaskFunctionSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = TaskFunctionFilter
    queryset = TaskFunction.objects.order_by("name", "pk")

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])


@extend_schema_view(
    list=extend_schema(
        summary="Calendars of dates to skip (what a job's excludeCalendarId names)",
        responses={200: CalendarSerializer(many=True), **schema.LIST_ERRORS},
    ),
    retrieve=extend_schema(summary="One calendar", responses={200: CalendarSerializer, **schema.DETAIL_ERRORS}),
)
class CalendarViewSet(viewsets.ReadOnlyModelViewSet):
    """Calendars, edited in the admin: jobs skip the fire times that fall on their dates."""

    permission_classes = [CanReadCalendars]
    lookup_value_regex = "[^/]+"
    serializer_class = CalendarSerializer

    def get_queryset(self):
        return selectors.calendar_list()

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])


class SchedulerStatusView(APIView):
    """Whether the scheduler runs, its processes, job and execution counts, and the next runs."""

    permission_classes = [CanReadJobs]

    @extend_schema(summary="Scheduler status", responses={200: SchedulerStatusSerializer, **schema.READ_ERRORS})
    def get(self, request):
        return Response(SchedulerStatusSerializer(selectors.scheduler_status()).data)


class CronPreviewView(APIView):
    """Check a cron expression and list its next fire times, as jobs would evaluate it."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Preview a cron expression",
        description=(
            "The next `count` fire times after `after` (default: now), as jobs fire them. "
            "200 with valid=false and errors when the expression or timezone is not acceptable; "
            "400 only when the query string itself is malformed (missing expression, bad count, "
            "an `after` that is not ISO 8601 with an offset)."
        ),
        parameters=[CronPreviewQuerySerializer],
        responses={
            200: CronPreviewSerializer,
            400: schema.field_errors(CronPreviewQuerySerializer, "CronPreviewQueryError"),
            **schema.READ_ERRORS,
        },
    )
    def get(self, request):
        query = CronPreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        preview = selectors.cron_preview(
            query.validated_data["expression"],
            query.validated_data["timezone"],
            query.validated_data["count"],
            after=query.validated_data.get("after"),
        )
        return Response(CronPreviewSerializer(preview).data)


class JobPreviewView(APIView):
    """A saved job's next fire times (interval or cron) after a moment, as the engine will fire them."""

    permission_classes = [CanReadJobs]

    @extend_schema(
        summary="A job's next fire times",
        description=(
            "The next `count` fire times after `after`, as the scheduler will fire them; without "
            "`after`, from the job's next run. A paused or disabled job does not fire at these times "
            "until it is resumed or enabled."
        ),
        parameters=[
            OpenApiParameter("id", int, OpenApiParameter.PATH, description="The job's id."),
            JobPreviewQuerySerializer,
        ],
        responses={
            200: JobPreviewSerializer,
            400: schema.field_errors(JobPreviewQuerySerializer, "JobPreviewQueryError"),
            404: schema.NOT_FOUND,
            **schema.READ_ERRORS,
        },
    )
    def get(self, request, pk):
        job = active_job_or_404(pk)
        query = JobPreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        preview = selectors.job_preview(job, query.validated_data["count"], after=query.validated_data.get("after"))
        return Response(JobPreviewSerializer(preview).data)


def api_not_found(request, *args, **kwargs):
    """Any other URL under the API: a JSON 404 like the API's own, not Django's HTML page."""
    return JsonResponse({"detail": "Not found."}, status=404)
