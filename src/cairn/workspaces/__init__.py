"""Upload workspaces: unpack, sanitize, check, package, log, lock, release and delete."""
