"""URLs of the API's OpenAPI 3 schema (/api/v1/schema/) and its Swagger UI (/api/v1/schema/swagger-ui/)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", SpectacularAPIView.as_view(), name="api-schema"),
    path("swagger-ui/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-swagger-ui"),
]
