"""Throttles of the ways in: signups, logins and bearer tokens (docs/api.md, "Throttling").

DRF's throttles, on the API and on the HTML pages alike. They count in Django's cache, which
the settings put in the broker's Redis, so that every web process and thread counts together.
Each rate is `settings.THROTTLE_RATES[scope]`, read at every request; no rate, no throttle.

If the cache cannot be reached, a throttle lets the request through (fails open): with the
broker down, customers can still sign up and log in, unthrottled, instead of getting 500s.
"""

import logging
from hashlib import sha256

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


class SharedThrottle(SimpleRateThrottle):
    """Counts requests per client address (`ident`) in the shared cache; fails open."""

    scope: str
    duration: int  # seconds of the window (set by DRF from the rate)
    message = ""

    def get_rate(self) -> str | None:
        return settings.THROTTLE_RATES.get(self.scope)

    def wait(self) -> float:
        # DRF's estimate; none when a lowered rate left more requests in the window than it
        # allows: then the whole window.
        return super().wait() or self.duration

    def ident(self, request) -> str:
        # The connection's address, or the one the trusted proxies in front of the app saw
        # (REST_FRAMEWORK["NUM_PROXIES"]): a client cannot pick a new one with X-Forwarded-For.
        return self.get_ident(request)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.ident(request)}

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError as exc:
            logger.warning(
                "throttle %s: cache unreachable (%s); request let through", self.scope, exc
            )
            return True


class SignupThrottle(SharedThrottle):
    """Signups from one address, by the API and the page together."""

    scope = "signup"
    message = "Too many signups from this address."


class LoginThrottle(SharedThrottle):
    """Login attempts from one address, whatever the account."""

    scope = "login"
    message = "Too many login attempts."


class AccountLoginThrottle(SharedThrottle):
    """Login attempts at one account, from whatever address. (An attacker can hold an account's
    owner back this way for the rest of the window; the owner's other sessions and API token
    keep working.)"""

    scope = "login_account"
    message = LoginThrottle.message

    def ident(self, request) -> str:
        # As the login form reads it (EmailAuthenticationForm); hashed, so that no email
        # address is kept in the cache and any input makes a valid key.
        email = request.POST.get("username", "").strip().lower()
        return sha256(email.encode()).hexdigest()


class BadTokenThrottle(SharedThrottle):
    """Unknown or revoked bearer tokens from one address.

    Only failures count (`record_failure`): a client with a good token is never held back by
    its own requests. Over the limit, every bearer token from the address is refused until the
    window has passed, good ones too: otherwise a guesser would learn which guess was right.
    """

    scope = "bad_token"
    message = "Too many invalid tokens from this address."
    may_count = False

    def throttle_success(self) -> bool:
        # Looking, not counting: the token has not been checked yet.
        self.may_count = True
        return True

    def record_failure(self) -> None:
        if not self.may_count:  # off, or the cache was unreachable when it looked
            return
        try:
            super().throttle_success()
        except RedisError as exc:
            logger.warning("throttle %s: cache unreachable (%s); not counted", self.scope, exc)


def seconds_to_wait(request, *throttles: SharedThrottle) -> float | None:
    """None if every throttle lets the request through (each counting it, as DRF's views do);
    otherwise the seconds until the one that waits longest would."""
    waits = [throttle.wait() for throttle in throttles if not throttle.allow_request(request, None)]
    return max(waits, default=None)


def seconds_to_wait_for_login(request) -> float | None:
    """A login attempt, on the shop's page or the admin's: counted per address and per account,
    the two pages together."""
    return seconds_to_wait(request, LoginThrottle(), AccountLoginThrottle())
