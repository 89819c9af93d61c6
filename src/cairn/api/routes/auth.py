"""Log in and out with bearer tokens."""

from __future__ import annotations

from fastapi import APIRouter, status

from cairn.accounts import service as accounts
from cairn.accounts.schemas import LoginRequest, LoginResponse, UserRead
from cairn.api.deps import SessionDep, SettingsDep, TokenDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login", response_model=LoginResponse)
def login(body: LoginRequest, session: SessionDep, settings: SettingsDep) -> LoginResponse:
    """Exchange an email (or user id) and password for a bearer token valid for one day.

    Send the token as `Authorization: Bearer <token>` on every other call.
    """
    secret, token, user = accounts.login(
        session,
        email=body.email,
        user_id=body.user_id,
        password=body.password,
        lifetime=settings.token_lifetime,
    )
    return LoginResponse(
        token=secret, expires_at=token.expires_at, user=UserRead.model_validate(user)
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(session: SessionDep, token: TokenDep) -> None:
    """Revoke the token this request carries; it stops working at once."""
    accounts.authenticate(session, token)
    accounts.logout(session, token)
