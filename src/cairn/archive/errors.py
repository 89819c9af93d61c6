"""The archive's errors, each a kind from ``cairn.errors`` (so status codes follow)."""

from __future__ import annotations

from cairn.errors import BadRequest, Conflict, Invalid, NotFound, TooLarge

__all__ = [
    "Base64Signature",
    "ContainerNotFound",
    "NotCms",
    "PluginUnavailable",
    "SignatureTooLarge",
    "StorageNotFound",
    "UnusableInput",
    "WorkerLost",
]


class NotCms(BadRequest):
    code = "not-cms"
    title = "Not a CMS signature"


class Base64Signature(BadRequest):
    code = "base64-signature"
    title = "Base64 signatures are not accepted"


class UnusableInput(Invalid):
    code = "archive-invalid"
    title = "Invalid archive request"


class SignatureTooLarge(TooLarge):
    code = "signature-too-large"
    title = "Signature too large"


class ContainerNotFound(NotFound):
    code = "container-not-found"
    title = "Container not found"


class StorageNotFound(NotFound):
    code = "storage-not-found"
    title = "Storage not found"


class PluginUnavailable(Invalid):
    code = "plugin-unavailable"
    title = "Storage plugin unavailable"


class WorkerLost(Conflict):
    code = "worker-lost"
    title = "Another worker holds this container"
