"""The built-in dispatchers besides ``Local folder`` (issue #16): ``AWS S3``, ``Storage URL``
(any fsspec URL), ``Email`` and ``Webhook``; ``cairn.processing.builtin`` registers them."""

from cairn.processing.dispatchers._email import EMAIL
from cairn.processing.dispatchers._layout import dispatch_path, safe_name
from cairn.processing.dispatchers._s3 import AWS_S3
from cairn.processing.dispatchers._url import STORAGE_URL
from cairn.processing.dispatchers._webhook import WEBHOOK, sign_webhook

__all__ = [
    "AWS_S3",
    "EMAIL",
    "STORAGE_URL",
    "WEBHOOK",
    "dispatch_path",
    "safe_name",
    "sign_webhook",
]
