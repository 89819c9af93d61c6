"""Accounts request and response models (the wire shapes of /api/v1/auth, users, organisations)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CreditEntryRead",
    "LoginRequest",
    "LoginResponse",
    "MemberRead",
    "OrganisationRead",
    "OrganisationUpdate",
    "PasswordChange",
    "PrivilegeGrant",
    "UserRead",
    "UserUpdate",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Strict):
    """Log in with an email or a user id, and the password."""

    email: str | None = Field(default=None, max_length=320)
    user_id: str | None = Field(default=None, max_length=64)
    password: str = Field(max_length=1024)

    @model_validator(mode="after")
    def _one_identity(self) -> LoginRequest:
        if not (self.email or self.user_id):
            raise ValueError("give 'email' or 'user_id'")
        return self


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    given_name: str | None
    family_name: str | None
    phone: str | None
    notify_by_email: bool
    notify_by_sms: bool
    created_at: datetime


class LoginResponse(BaseModel):
    token: str
    expires_at: datetime
    user: UserRead


class UserUpdate(_Strict):
    email: str | None = Field(default=None, max_length=320)
    given_name: str | None = Field(default=None, max_length=200)
    family_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()\-]{3,38}$")
    notify_by_email: bool | None = None
    notify_by_sms: bool | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> UserUpdate:
        # Names and phone may be cleared with null; these always need a value.
        for name in ("email", "notify_by_email", "notify_by_sms"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"'{name}' cannot be null")
        return self


class PasswordChange(_Strict):
    old: str = Field(max_length=1024)
    new: str = Field(max_length=1024)


class OrganisationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str | None
    created_at: datetime
    privilege: str | None = Field(default=None, description="The caller's privilege here.")


class OrganisationUpdate(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class CreditEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    amount: int
    reason: str
    created_at: datetime


class MemberRead(BaseModel):
    """A member of an organisation and the privilege they hold there."""

    user_id: str
    email: str
    privilege: str
    created_at: datetime


class PrivilegeGrant(_Strict):
    privilege: Literal["view", "execute", "manage"] = Field(
        description="view < execute < manage: each includes the ones before it."
    )
