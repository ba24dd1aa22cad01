"""Evidence, privacy and hand-off: hash-chain verification, export bundles, retention,
redaction and CAD export. Imports only config and models."""
