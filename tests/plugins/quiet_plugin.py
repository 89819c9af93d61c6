"""A plugin that implements no hook: loading it must simply succeed."""
