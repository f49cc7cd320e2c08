from django.urls import path

from products import api

urlpatterns = [
    path("products", api.ProductListView.as_view(), name="products"),
    path("user/products", api.UserProductListView.as_view(), name="user-products"),
    path("products/<str:product>", api.ProductView.as_view(), name="product"),
    path("products/<str:product>/team", api.TeamView.as_view(), name="product-team"),
    path(
        "products/<str:product>/team/<str:username>", api.TeamMemberView.as_view(), name="product-team-member"
    ),
    path("products/<str:product>/groups", api.GroupListView.as_view(), name="product-groups"),
    path("products/<str:product>/groups/<str:name>", api.GroupView.as_view(), name="product-group"),
]
