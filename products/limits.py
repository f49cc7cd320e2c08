"""Plan limits in one place (the billing app will tie them to plans)."""

# People on a product's team, counting pending invitations, on the free plan.
FREE_TEAM_MEMBER_LIMIT = 5

# API users (programmatic team members) per product. They hold no seat, but each is an account
# with a permanent token, so the number stays bounded.
API_USER_LIMIT = 20
