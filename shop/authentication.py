from rest_framework import authentication, exceptions

from shop.throttling import BadTokenThrottle
from shop.tokens import user_for_token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`, checked against the stored SHA-256 digest."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        throttle = BadTokenThrottle()
        if not throttle.allow_request(request, None):
            raise exceptions.Throttled(throttle.wait(), detail=throttle.message)
        user = user_for_token(token.strip()) if token.strip() else None
        if user is None:
            throttle.record_failure()
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return (user, token)

    def authenticate_header(self, request):
        return self.keyword
