"""Plan limits in one place (the billing app will tie them to plans)."""

# People on a product's team, counting pending invitations, on the free plan.
FREE_TEAM_MEMBER_LIMIT = 5
