"""`idp demo`'s mail catcher: an SMTP server in-process (aiosmtpd) that keeps nothing and prints each email's
recipient, subject and links in the terminal, so a newcomer can sign up, verify and reset without a mail server.

For trials only: a real deployment points IDP_SMTP_URL at a relay (README)."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import socket
import sys
from email.message import EmailMessage
from typing import Any, TextIO

from aiosmtpd.controller import Controller

_LINK = re.compile(r"https?://[^\s<>\"']+")


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def summary(message: EmailMessage) -> str:
    """Who it is for, its subject, and every link in its text part."""
    part = message.get_body(preferencelist=("plain",))
    text = str(part.get_content()) if part is not None else ""
    links = list(dict.fromkeys(_LINK.findall(text)))
    lines = [f"[demo mail] to {message['To']}: {message['Subject']}", *(f"[demo mail]   {link}" for link in links)]
    return "\n".join(lines)


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd calls it by this name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        if isinstance(message, EmailMessage):
            print(summary(message), file=self._out, flush=True)
        return "250 Message accepted for delivery"


class MailCatcher:
    """An SMTP server on `host`:`port` in a thread of its own; `url` is what IDP_SMTP_URL should say."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, out: TextIO | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._controller = Controller(_Printer(out or sys.stderr), hostname=host, port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> None:
        # aiosmtpd logs whole conversations at DEBUG: the links in them are secrets even in a demo's log.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
