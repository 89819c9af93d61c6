"""One router module per area; ``cairn.api.app`` includes them."""
