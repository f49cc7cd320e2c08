"""The development mailbox: an email backend that keeps each message as a file under ``var/mail/``,
and the reads behind the console's dev mailbox page. Production sends through ``EMAIL_URL``."""

from __future__ import annotations

import email
import email.policy
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

_MESSAGE_ID_CHARS = frozenset("0123456789abcdef-T")


class MailboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        directory = Path(settings.MAIL_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            name = f"{datetime.now().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.eml"
            temporary = directory / f".{name}"
            temporary.write_bytes(message.message().as_bytes())
            temporary.rename(directory / name)  # readers never see a half-written file
            sent += 1
        return sent


@dataclass(frozen=True)
class MailboxMessage:
    id: str
    subject: str
    sender: str
    to: str
    date: datetime | None
    text: str
    html: str | None


def _parse(path: Path) -> MailboxMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    date_header = parsed.get("Date")
    return MailboxMessage(
        id=path.stem,
        subject=str(parsed.get("Subject", "")),
        sender=str(parsed.get("From", "")),
        to=str(parsed.get("To", "")),
        date=parsedate_to_datetime(date_header) if date_header else None,
        text=text_part.get_content() if text_part else "",
        html=html_part.get_content() if html_part else None,
    )


def mailbox_list(*, limit: int = 200) -> list[MailboxMessage]:
    directory = Path(settings.MAIL_DIR)
    if not directory.exists():
        return []
    paths = sorted(directory.glob("*.eml"), reverse=True)[:limit]
    return [_parse(path) for path in paths]


def mailbox_get(*, message_id: str) -> MailboxMessage | None:
    if not message_id or not set(message_id) <= _MESSAGE_ID_CHARS:
        return None  # ids are file names we made; anything else could walk the file system
    path = Path(settings.MAIL_DIR) / f"{message_id}.eml"
    return _parse(path) if path.is_file() else None
