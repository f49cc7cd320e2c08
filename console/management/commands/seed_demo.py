"""Create the demo account (idempotent). Later capabilities add their demo fleet here."""

from django.core.management.base import BaseCommand

from console.accounts.models import User

DEMO_EMAIL = "demo@quanta.local"
DEMO_PASSWORD = "quanta-demo-2026"  # noqa: S105 (documented demo credentials)


class Command(BaseCommand):
    help = "Create the demo account, or reset its password if it exists."

    def add_arguments(self, parser):
        parser.add_argument("--email", default=DEMO_EMAIL)
        parser.add_argument("--password", default=DEMO_PASSWORD)

    def handle(self, *args, email: str, password: str, **options):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(
                email=email, password=password, first_name="Demo", last_name="User"
            )
            created = "Created"
        else:
            user.set_password(password)
            user.is_active = True
            user.save(update_fields=["password", "is_active"])
            created = "Reset"
        self.stdout.write(self.style.SUCCESS(f"{created} the demo account: {email} / {password}"))
