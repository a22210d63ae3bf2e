from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config import openapi_examples as examples
from config.openapi import AUTH_ERRORS, ok_envelope


class PartnershipDetailApi(APIView):
    """The partnership a key belongs to: lets a partner check its key and settings."""

    class OutputSerializer(serializers.Serializer):
        partnership_id = serializers.UUIDField(source="partnership.id")
        name = serializers.CharField(source="partnership.name")
        status = serializers.CharField(source="partnership.status")
        reward_unit = serializers.CharField(source="partnership.reward_unit")
        mode = serializers.CharField()
        key_prefix = serializers.CharField(source="key.prefix")

    @extend_schema(
        operation_id="partnership_retrieve",
        examples=examples.PARTNERSHIP_RETRIEVE,
        responses={200: ok_envelope("PartnershipDetail", OutputSerializer), **AUTH_ERRORS},
    )
    def get(self, request, partnership_id: str) -> Response:
        return Response({"code": "ok", "data": self.OutputSerializer(request.user).data})
