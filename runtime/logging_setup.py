"""Process-wide logging that never writes personal data.

`configure_logging(level)` does three things:
- installs a LogRecord factory that masks every record as it is created, so handlers added later
  (uvicorn configures its own after we start) still only ever see masked records;
- installs one stream handler on the root logger;
- puts a `RedactingFilter` on that handler and on every handler already present, which drops
  extras carrying post content ('text', 'raw_payload', ...) — the factory cannot, because logging
  attaches extras after the factory returns — and masks anything not made by the factory.
Masking replaces post/message objects among the args by their id (their repr would print the
text), formats the message, then hides phone numbers, emails, addresses,
postcodes, coordinates and handles (evidence.redaction). Names are not looked for here: NER per
log line is too slow, and post text — where names appear — must never be logged at all.
"""
from __future__ import annotations

import logging
import sys
from typing import IO, Any

from evidence.redaction import redact
from models.domain import OutboundRequest, RawPost
from models.tables import OutboundMessage, Post

# Extras that would carry what the public wrote; replaced in every record before it is written.
CONTENT_EXTRAS = ("text", "post_text", "raw_payload", "payload", "body", "message_text")
DROPPED = "[dropped]"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_TEXT_CARRIERS = (Post, RawPost, OutboundMessage, OutboundRequest)
_MARK = "_flare_redacted"


def _carries_post_text(arg: Any) -> bool:
    """Posts, raw posts and messages, recognised by type, never by touching attributes: reading a
    property (an HTTP response's .text, say) could raise inside a logging call."""
    if isinstance(arg, _TEXT_CARRIERS):
        return True
    fields = getattr(type(arg), "model_fields", None) or getattr(type(arg), "__dataclass_fields__", None)
    return isinstance(fields, dict) and "text" in fields


def _safe_arg(arg: Any) -> Any:
    """Posts and messages logged as objects print every field, text included: log their id only."""
    if isinstance(arg, (list, tuple)):
        return type(arg)(_safe_arg(a) for a in arg) if type(arg) in (list, tuple) else arg
    if _carries_post_text(arg):
        ident = getattr(arg, "id", None) or getattr(arg, "external_id", None) or "?"
        return f"<{type(arg).__name__} {ident}>"
    return arg


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask the record's message, args, exception and stack text in place (once)."""
    if getattr(record, _MARK, False):
        return record
    if isinstance(record.args, tuple):
        record.args = tuple(_safe_arg(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _safe_arg(v) for k, v in record.args.items()}
    record.msg = _safe_arg(record.msg)
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string must not turn into a lost record
        message = f"{record.msg!r} (unformattable args)"
    record.msg = redact(message, names=False)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text, names=False)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, names=False)
    setattr(record, _MARK, True)
    return record


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key in CONTENT_EXTRAS:
            if key in record.__dict__:
                record.__dict__[key] = DROPPED
        redact_record(record)
        return True


_base_factory = None


def _install_factory() -> None:
    global _base_factory
    if _base_factory is not None:
        return
    base = logging.getLogRecordFactory()
    _base_factory = base

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        return redact_record(base(*args, **kwargs))

    logging.setLogRecordFactory(masked_record)


def _all_handlers() -> list[logging.Handler]:
    handlers = list(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers += logger.handlers
    return handlers


def configure_logging(level: str | int = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Install redacting logging for this process; calling it again replaces the root handler."""
    _install_factory()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_flare_handler", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler._flare_handler = True
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for h in _all_handlers():
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter())
    return handler


def remove_logging(handler: logging.Handler) -> None:
    """Undo configure_logging (tests, or a host process taking logging back)."""
    global _base_factory
    logging.getLogger().removeHandler(handler)
    for h in _all_handlers():
        for f in [f for f in h.filters if isinstance(f, RedactingFilter)]:
            h.removeFilter(f)
    if _base_factory is not None:
        logging.setLogRecordFactory(_base_factory)
        _base_factory = None
