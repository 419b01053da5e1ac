"""The alerts section of the settings pages: where alerts and the daily summary go (email
addresses, an address that takes JSON and its signing secret, both write-only), which are
on, when the summary comes and how many alerts an hour at most; a "Send a test message"
button (as `connector alerts test`), and the last messages with how each went.

Saved through ``settings_forms`` like every section (validated with the shop, versioned,
audited); the channels' secrets are encrypted with the shop's other secrets.
"""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from connector.config import ALERT_KINDS
from connector.domain.alerts import KIND_WORDS
from connector.services.alerts import AlertError
from connector.web import current_store
from connector.web import settings_forms as forms
from connector.web.auth import login_required
from connector.web.settings import _actor, bp

CLEAR_POST = "clear_post_url"
FIELDS = [
    forms.Field("alerts.emails", "Email addresses", "lines",
                help="Who gets alerts and the daily summary, comma-separated, like maker@example.com, "
                     "studio@example.com."),
    forms.Field("alerts.post_url", "Also send them as JSON to", secret=True,
                help="An https:// address that takes a JSON POST, like a chat channel's incoming webhook. "
                     "It is kept secret."),
    forms.Field("alerts.signing_secret", "Signing secret for that address (optional)", secret=True,
                help="Then each message carries X-Connector-Signature: sha256= and the HMAC-SHA256 of its body "
                     "with this secret, so the receiver can check it came from here."),
    forms.Field("alerts.kinds", "Tell me about", "multi", tuple((kind, KIND_WORDS[kind]) for kind in ALERT_KINDS)),
    forms.Field("alerts.digest_at", "Daily summary at (your shop's time)", "time", placeholder="08:00",
                help="Yesterday in figures and what needs you. Empty: 08:00."),
    forms.Field("alerts.rate_limit_per_hour", "At most this many alerts an hour", "int", placeholder="10",
                help="Beyond it, one message later says how many more came. Empty: 10."),
]
STATUS_WORDS = {"pending": "waiting to be sent", "sending": "being sent", "sent": "sent", "failed": "not sent (given up)",
                "dropped": "not sent"}


@bp.route("/alerts", methods=("GET", "POST"))
@login_required
def alerts(shop_id: str):
    document, version = forms.load(shop_id)
    document.setdefault("alerts", {}).setdefault("kinds", list(ALERT_KINDS))  # shown ticked: every kind is on
    errors: dict[str, str] = {}
    raw: dict[str, str] = {}
    stale = None
    if request.method == "POST":
        result = forms.apply_form(document, request.form, FIELDS)
        errors, raw = result.errors, result.raw
        section = result.document.setdefault("alerts", {})
        # No box ticked means none on (the key's default would be every kind).
        section["kinds"] = [kind for kind in ALERT_KINDS if kind in request.form.getlist("alerts.kinds")]
        if request.form.get(CLEAR_POST):  # write-only inputs cannot be emptied: this box removes both
            section.pop("post_url", None)
            section.pop("signing_secret", None)
        if not errors:
            outcome = forms.save(shop_id, result.document, request.form.get("version"), _actor())
            if outcome.saved:
                flash(f"Saved (version {outcome.version}).")
                return redirect(url_for("settings.alerts"))
            errors, stale = forms.placed(outcome.errors, FIELDS), outcome.stale
        document = result.document
    return _page(shop_id, document, version, errors=errors, raw=raw, stale=stale)


@bp.post("/alerts/test")
@login_required
def alerts_test(shop_id: str):
    """Send a test message on each channel saved (as `connector alerts test`); say how each went."""
    service = current_app.extensions["connector"].alerts
    try:
        outcomes = [(o.ok, o.sentence) for o in service.test(current_store(), shop_id, _actor())]
    except AlertError as exc:
        outcomes = [(False, str(exc))]
    document, version = forms.load(shop_id)
    document.setdefault("alerts", {}).setdefault("kinds", list(ALERT_KINDS))
    return _page(shop_id, document, version, tested=outcomes)


def _page(shop_id: str, document: dict, version: int, *, errors=None, raw=None, stale=None, tested=None):
    container = current_app.extensions["connector"]
    shop = container.shops.get(shop_id)
    return render_template(
        "settings/alerts.html", document=document, version=version, fields=FIELDS, errors=errors or {},
        raw=raw or {}, stale=stale, tested=tested or [], clear_post=CLEAR_POST,
        email_available=container.alerts.email_available(), recent=container.alerts.recent(current_store(), shop_id),
        status_words=STATUS_WORDS, timezone=shop.timezone if shop else "UTC",
        post_saved=forms.get_path(document, "alerts.post_url") not in (None, ""),
    )
