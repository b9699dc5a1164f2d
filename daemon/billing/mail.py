"""Customer e-mail: messages rendered from editable Jinja2 templates, sent over SMTP.

Templates are plain text files named ``NAME.txt``: the first line is ``Subject: ...``, then a blank line,
then the body. They are looked up first in the folder given to :class:`Templates` (or named by the
``EDGEBILL_TEMPLATE_DIR`` environment variable), then in the ones shipped in ``daemon/billing/templates``
(``reminder``, ``final-notice``, ``suspended``), so an installation overrides a template by copying it.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any, Final, Protocol

import jinja2

from daemon.config import ConfigError, SmtpSettings

__all__ = ["SHIPPED_TEMPLATES", "TEMPLATE_DIR_ENV", "MailError", "Mailer", "RenderedMail", "SmtpMailer", "Templates"]

log = logging.getLogger(__name__)

#: Environment variable naming a folder whose templates replace the shipped ones.
TEMPLATE_DIR_ENV: Final = "EDGEBILL_TEMPLATE_DIR"

#: The templates shipped with edgebill (e-mails, and the invoice page of :mod:`daemon.billing.pdf`).
SHIPPED_TEMPLATES: Final = Path(__file__).with_name("templates")


class MailError(Exception):
    """A message that could not be rendered or handed to the mail relay (one line, no secrets)."""


@dataclass(frozen=True)
class RenderedMail:
    """A rendered message: its subject and plain-text body."""

    subject: str
    body: str


class Mailer(Protocol):
    """Something that delivers a message (the SMTP relay in production)."""

    def send(self, message: EmailMessage) -> None: ...


class Templates:
    """The e-mail templates: an override folder first, then the shipped ones."""

    def __init__(self, folder: Path | str | None = None) -> None:
        chosen = folder if folder is not None else os.environ.get(TEMPLATE_DIR_ENV) or None
        loaders: list[jinja2.BaseLoader] = []
        if chosen is not None:
            loaders.append(jinja2.FileSystemLoader(str(chosen)))
        loaders.append(jinja2.FileSystemLoader(str(SHIPPED_TEMPLATES)))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, name: str, context: dict[str, Any]) -> RenderedMail:
        """Render template ``name`` (without ``.txt``) with ``context``."""
        try:
            text = self._env.get_template(f"{name}.txt").render(**context)
        except jinja2.TemplateNotFound:
            raise MailError(f"no e-mail template named {name!r}") from None
        except jinja2.TemplateError as exc:
            raise MailError(f"e-mail template {name!r} failed: {exc}") from None
        except UnicodeDecodeError as exc:
            raise MailError(f"e-mail template {name!r} is not valid UTF-8 (byte offset {exc.start})") from None
        except OSError as exc:  # a folder where the file should be, a file that cannot be read
            raise MailError(f"e-mail template {name!r} cannot be read: {exc.strerror or exc}") from None
        except RecursionError:
            raise MailError(f"e-mail template {name!r} nests too deeply") from None
        head, _, body = text.partition("\n\n")
        if not head.startswith("Subject:") or "\n" in head.strip():
            raise MailError(f"e-mail template {name!r} must start with one 'Subject: ...' line and a blank line")
        return RenderedMail(subject=head[len("Subject:") :].strip(), body=body)

    def message(self, name: str, context: dict[str, Any], *, sender: str, to: str) -> EmailMessage:
        """A complete message from template ``name`` to ``to``."""
        rendered = self.render(name, context)
        message = EmailMessage()
        message["From"] = sender
        message["To"] = to
        message["Subject"] = rendered.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(domain=domain)
        message.set_content(rendered.body)
        return message


class SmtpMailer:
    """Delivers through the configured SMTP relay (STARTTLS and login as ``[smtp]`` says)."""

    def __init__(self, smtp: SmtpSettings, *, timeout: float = 30.0) -> None:
        self._smtp = smtp
        self._timeout = timeout

    def send(self, message: EmailMessage) -> None:
        smtp = self._smtp
        try:
            password = smtp.password()  # read now: before connecting, so a bad file costs no connection
        except ConfigError as exc:
            raise MailError(f"cannot send mail: {exc}") from None
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=self._timeout) as client:
                if smtp.starttls:
                    client.starttls(context=ssl.create_default_context())
                if smtp.username and password is not None:
                    client.login(smtp.username, password)
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"mail relay {smtp.host}:{smtp.port} refused the message: {exc}") from None
        log.info("mail %r sent to %s", message["Subject"], message["To"])
