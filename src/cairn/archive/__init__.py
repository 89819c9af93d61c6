"""Signed archive: containers of documents and CMS signatures, verification, timestamps."""
