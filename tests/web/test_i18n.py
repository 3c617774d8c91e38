"""Every visible string is translatable, and translated into Chinese."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from computelease.web import i18n
from computelease.web.format import large, money, pct

ROOT = Path(__file__).resolve().parents[2]


def extracted() -> set[str]:
    method_map = [("src/computelease/**.py", "python"), ("src/computelease/web/templates/**.html", "jinja2")]
    options = {"src/computelease/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    return {
        msg if isinstance(msg, str) else msg[0]
        for _file, _line, msg, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options, keywords=keywords
        )
    }


def catalog(locale: str) -> dict[str, str]:
    with (i18n.CATALOGS / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return {m.id: m.string for m in read_po(fh) if m.id}


def test_every_source_string_has_a_chinese_translation() -> None:
    zh = catalog("zh_CN")
    missing = sorted(s for s in extracted() if not zh.get(s))
    assert not missing, f"run `make i18n` and translate: {missing}"


def test_english_catalog_knows_every_string() -> None:
    assert extracted() <= set(catalog("en"))


def test_negotiation() -> None:
    assert i18n.negotiate("en", "zh-CN") == "en"
    assert i18n.negotiate(None, "zh-TW,zh;q=0.8") == "zh_CN"
    assert i18n.negotiate(None, "fr-FR,en;q=0.5") == "en"
    assert i18n.negotiate("xx", None, default="en") == "en"


def test_number_conventions() -> None:
    from decimal import Decimal

    assert money(Decimal("1234567.891"), "CNY") == "¥1,234,567.89"
    assert money(Decimal("12.5"), "USD", "en") == "US$12.50"
    assert large(Decimal("555000000"), "CNY", "zh_CN") == "5.55亿元"
    assert large(Decimal("29000000"), "CNY", "zh_CN") == "2900.00万元"
    assert large(Decimal("555000000"), "CNY", "en") == "¥555.0M"
    assert pct(0.873) == "87.3%" and pct(Decimal("0.99952"), 3) == "99.952%"
