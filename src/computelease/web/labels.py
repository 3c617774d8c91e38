"""Human labels for stored codes (enum values), marked for translation.

Templates show ``label(code)``; the code itself stays the same word in the API, CLI and database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


LABELS: dict[str, str] = {
    # roles
    "admin": N_("Administrator"),
    "operator": N_("Operator"),
    "customer": N_("Customer"),
    "lessor": N_("Lessor"),
    # customer segments
    "model_maker": N_("Model maker"),
    "ai_cloud": N_("AI cloud"),
    "enterprise": N_("Enterprise"),
    "government_center": N_("Government compute centre"),
    "research": N_("Research"),
    # lessor kinds
    "financial_leasing": N_("Financial leasing company"),
    "finance_leasing": N_("Finance lease company"),
    "bank": N_("Bank"),
}


def label(code: object) -> str:
    from computelease.web.i18n import gettext

    key = getattr(code, "value", code)
    return gettext(LABELS[key]) if key in LABELS else str(key)


def labeller(table: Mapping[str, str], doc: str) -> Callable[[object], str]:
    """A domain's ``label``: its own codes first (the same code may mean different things in two
    domains, "active" in contracts and in leases), then the shared ones above, else the code itself."""

    def domain_label(code: object) -> str:
        from computelease.web.i18n import gettext

        key = getattr(code, "value", code)
        return gettext(table[key]) if isinstance(key, str) and key in table else label(code)

    domain_label.__doc__ = doc
    return domain_label
