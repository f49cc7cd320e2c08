"""/v1/products: list, get and create products."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework.response import Response

from console.api.views import QuantaAPIView
from products import selectors, services
from products.serializers import ProductCreateSerializer, ProductInfoSerializer, product_info

_PRODUCT_LIST = inline_serializer("ProductList", {"products": ProductInfoSerializer(many=True)})
_PRODUCT = inline_serializer("ProductDetail", {"product": ProductInfoSerializer()})


class ProductListView(QuantaAPIView):
    """``GET /v1/products`` (api-js) and ``GET /v1/user/products`` (the CLI): the products of the
    teams you are on. ``POST /v1/user/products`` creates one."""

    @extend_schema(
        operation_id="products_list",
        summary="List the products you are a team member of",
        responses=_PRODUCT_LIST,
    )
    def get(self, request):
        products = selectors.product_list_for_user(user=request.user).select_related("owner")
        return Response({"products": [product_info(product) for product in products]})

    @extend_schema(
        operation_id="products_create",
        summary="Create a product",
        request=ProductCreateSerializer,
        responses={201: _PRODUCT},
    )
    def post(self, request):
        serializer = ProductCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_create(user=request.user, via="api", **serializer.validated_data)
        return Response({"ok": True, "product": product_info(product)}, status=201)


class UserProductListView(ProductListView):
    """The same under ``/v1/user/products``, where Particle's CLI lists and creates products."""

    @extend_schema(
        operation_id="user_products_list",
        summary="List your products (as the CLI asks)",
        responses=_PRODUCT_LIST,
    )
    def get(self, request):
        return super().get(request)

    @extend_schema(
        operation_id="user_products_create",
        summary="Create a product (as the CLI sends it)",
        request=ProductCreateSerializer,
        responses={201: _PRODUCT},
    )
    def post(self, request):
        return super().post(request)


class ProductView(QuantaAPIView):
    @extend_schema(
        operation_id="products_retrieve", summary="A product, by numeric id or slug", responses=_PRODUCT
    )
    def get(self, request, product: str):
        access = selectors.product_access(user=request.user, id_or_slug=product)
        return Response({"product": product_info(access.product)})
