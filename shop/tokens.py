"""API bearer tokens: random, shown once, stored as SHA-256 digests.

A token has 256 bits of entropy, so a fast digest is enough to keep a database leak from
revealing tokens; a slow password hasher would only slow every API request down.
"""

import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser

from shop.models import ApiToken


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: AbstractBaseUser) -> str:
    token = secrets.token_urlsafe(32)
    ApiToken.objects.create(user_id=user.pk, digest=digest(token))
    return token


def user_for_token(token: str) -> AbstractBaseUser | None:
    api_token = ApiToken.objects.select_related("user").filter(digest=digest(token)).first()
    if api_token is None or not api_token.user.is_active:
        return None
    return api_token.user
