"""Session tokens (shopify.md §1.4, app-ui.md §2): JWTs built here with PyJWT, verified by
adapters.shopify_auth.verify_session_token against an injected clock."""
from __future__ import annotations

from datetime import datetime, timezone

import jwt
import pytest

from adapters.shopify_auth import REQUIRED_CLAIMS, InvalidSessionToken, SessionToken, verify_session_token

CLIENT_ID = "a61950a2cbd5f32876b0b55587ec7a27"
SECRET = "shpss_0123456789abcdef0123456789abcdef"
PREVIOUS_SECRET = "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"
NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
T = int(NOW.timestamp())
SHOP = "aurora-candles.myshopify.com"


def claims(**changes) -> dict:
    """A token as App Bridge issues it: one minute of life, issued now."""
    base = {
        "iss": f"https://{SHOP}/admin",
        "dest": f"https://{SHOP}",
        "aud": CLIENT_ID,
        "sub": "902541635",
        "exp": T + 60,
        "nbf": T,
        "iat": T,
        "jti": "0d5f4a8e-5c1b-4d39-9a62-3f3a9b1c2d4e",
        "sid": "aaea182f2732d44c23057c0fea584021a4485b2bd25d3eb7fd349313ad24c685",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(payload: dict, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def verify(raw: str, at: datetime = NOW, secrets=(SECRET,)) -> SessionToken:
    return verify_session_token(raw, client_id=CLIENT_ID, secrets=secrets, now=lambda: at)


def test_a_valid_token_gives_its_shop_and_user():
    verified = verify(token(claims()))
    assert verified == SessionToken(shop=SHOP, user_id="902541635",
                                    session_id=claims()["sid"], expires_at=datetime.fromtimestamp(T + 60, timezone.utc))


@pytest.mark.parametrize("offset, valid", [(60 + 10, True), (60 + 11, False), (-10, True), (-11, False)],
                         ids=["exp+leeway", "exp+leeway+1", "nbf-leeway", "nbf-leeway-1"])
def test_exp_and_nbf_hold_with_ten_seconds_of_leeway(offset, valid):
    at = datetime.fromtimestamp(T + offset, timezone.utc)
    if valid:
        assert verify(token(claims()), at).shop == SHOP
    else:
        with pytest.raises(InvalidSessionToken, match="expired" if offset > 0 else "not valid yet"):
            verify(token(claims()), at)


def test_a_token_whose_nbf_lies_beyond_the_leeway_is_refused():
    with pytest.raises(InvalidSessionToken, match="nbf in the future"):
        verify(token(claims(nbf=T + 30, iat=T + 30, exp=T + 90)))


def test_an_expired_token_is_refused():
    with pytest.raises(InvalidSessionToken, match="expired"):
        verify(token(claims(exp=T - 30, nbf=T - 90, iat=T - 90)))


def test_the_previous_secret_is_accepted_during_a_rotation():
    raw = token(claims(), key=PREVIOUS_SECRET)
    assert verify(raw, secrets=(SECRET, PREVIOUS_SECRET)).shop == SHOP
    with pytest.raises(InvalidSessionToken, match="signature"):
        verify(raw, secrets=(SECRET,))


def test_a_token_signed_with_another_secret_is_refused():
    with pytest.raises(InvalidSessionToken, match="signature"):
        verify(token(claims(), key="shpss_not-our-secret-0123456789abcdef"))


def test_a_token_for_another_app_is_refused():
    with pytest.raises(InvalidSessionToken, match="aud"):
        verify(token(claims(aud="another-apps-client-id")))


@pytest.mark.parametrize("changes", [
    {"iss": "https://other-shop.myshopify.com/admin"},
    {"iss": f"https://{SHOP}"},
], ids=["iss-other-shop", "iss-without-admin"])
def test_iss_must_be_dest_plus_admin(changes):
    with pytest.raises(InvalidSessionToken, match="iss does not match"):
        verify(token(claims(**changes)))


@pytest.mark.parametrize("dest", [
    "https://evil.example.com",
    f"http://{SHOP}",
    f"https://{SHOP}.evil.com",
    "https://a.b.myshopify.com",
    f"https://{SHOP}/",
    SHOP,
])
def test_dest_must_be_a_myshopify_origin(dest):
    with pytest.raises(InvalidSessionToken, match="dest"):
        verify(token(claims(dest=dest, iss=f"{dest}/admin")))


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_every_required_claim_must_be_present(claim):
    with pytest.raises(InvalidSessionToken, match=f"lacks the '{claim}' claim|aud"):
        verify(token(claims(**{claim: None})))


def test_an_unsigned_or_other_algorithm_token_is_refused():
    with pytest.raises(InvalidSessionToken, match="HS256"):
        verify(token(claims(), key=SECRET * 2, algorithm="HS512"))  # a 64-byte key, as HS512 wants
    with pytest.raises(InvalidSessionToken):
        verify(jwt.encode(claims(), None, algorithm="none"))


@pytest.mark.parametrize("raw", ["", "   ", "not-a-jwt", "a.b.c"])
def test_garbage_is_refused_without_echoing_it(raw):
    with pytest.raises(InvalidSessionToken) as info:
        verify(raw)
    assert raw.strip() == "" or raw not in str(info.value)


def test_errors_never_contain_the_token():
    raw = token(claims(exp=T - 60, nbf=T - 120, iat=T - 120))
    with pytest.raises(InvalidSessionToken) as info:
        verify(raw)
    assert raw not in str(info.value) and raw.split(".")[1] not in str(info.value)


def test_verification_needs_a_client_id_and_a_secret():
    with pytest.raises(ValueError):
        verify_session_token(token(claims()), client_id=CLIENT_ID, secrets=("",), now=lambda: NOW)
    with pytest.raises(ValueError):
        verify_session_token(token(claims()), client_id="", secrets=(SECRET,), now=lambda: NOW)
