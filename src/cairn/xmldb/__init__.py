"""XML database: collections, documents, XQuery in multi-statement transactions, node OIDs."""
