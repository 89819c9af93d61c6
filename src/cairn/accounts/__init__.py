"""Accounts: users, organisations, memberships with privileges, tokens and credits."""

from cairn.accounts.service import Actor, Privilege

__all__ = ["Actor", "Privilege"]
