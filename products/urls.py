"""Console pages for products (the API lives in products/urls_api.py). ``<product>`` is a
product's numeric id or its slug."""

from django.urls import path

from products import group_views, team_views, views

app_name = "products"

urlpatterns = [
    path("", views.product_list, name="list"),
    path("new/", views.product_new, name="new"),
    path("<str:product>/", views.product_overview, name="overview"),
    path("<str:product>/events/", views.product_events, name="events"),
    path("<str:product>/groups/", group_views.group_list, name="groups"),
    path("<str:product>/groups/new/", group_views.group_create, name="group-create"),
    path("<str:product>/groups/<str:name>/edit/", group_views.group_edit, name="group-edit"),
    path("<str:product>/groups/<str:name>/delete/", group_views.group_delete, name="group-delete"),
    path("<str:product>/team/", team_views.team, name="team"),
    path("<str:product>/team/invite/", team_views.team_invite, name="team-invite"),
    path(
        "<str:product>/team/invitations/<int:invitation_id>/cancel/",
        team_views.team_invitation_cancel,
        name="team-invitation-cancel",
    ),
    path(
        "<str:product>/team/members/<int:user_id>/remove/",
        team_views.team_member_remove,
        name="team-member-remove",
    ),
    path("<str:product>/team/leave/", team_views.team_leave, name="team-leave"),
    path("<str:product>/team/api-users/new/", team_views.team_api_user_create, name="team-api-user-create"),
    path(
        "<str:product>/team/api-users/<int:api_user_id>/delete/",
        team_views.team_api_user_delete,
        name="team-api-user-delete",
    ),
]
