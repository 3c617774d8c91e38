"""Translations: gettext catalogs kept as ``.po`` files and compiled in memory with Babel.

Compiling at load time means a plain ``pip install`` needs no build step and no ``.mo`` file can go
stale beside its ``.po``.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = {"zh_CN": "中文", "en": "English"}
DEFAULT = "zh_CN"
COOKIE = "computelease_lang"
CATALOGS = Path(__file__).parent / "translations"

current: ContextVar[str] = ContextVar("locale", default=DEFAULT)


@lru_cache
def translations(locale: str) -> NullTranslations:
    po = CATALOGS / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def gettext(message: str) -> str:
    return translations(current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current.get()).ngettext(singular, plural, n)


def negotiate(cookie: str | None, accept_language: str | None, default: str = DEFAULT) -> str:
    """The cookie wins, then the browser's preferences in order (by language: zh-TW still reads
    zh_CN best of what we have), then the site default."""
    if cookie in LOCALES:
        return cookie
    by_language = {code.split("_")[0].lower(): code for code in LOCALES}
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().replace("-", "_").lower()
        if tag and tag.split("_")[0] in by_language:
            return by_language[tag.split("_")[0]]
    return default if default in LOCALES else DEFAULT
