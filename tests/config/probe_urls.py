"""A DRF view without partner auth, to exercise the error envelope on its own."""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class EchoApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def post(self, request):
        return Response({"code": "ok", "data": request.data})


class BrokenApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def get(self, request):
        raise RuntimeError("a bug")


urlpatterns = [
    path("probe/echo", EchoApi.as_view()),
    path("probe/broken", BrokenApi.as_view()),
    path("", include("config.urls")),
]
