"""Processing: data items, services (SSDs), processes, executions and the engine that runs them."""
