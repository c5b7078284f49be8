"""The vocabulary every role shares: what travels between provider, node, coordinator and ledger.

Pure Python (no grpc, no torch, no CrypTen): dataset ids and schema (`dataset`), upload
chunking (`upload`), canonical JSON (`canonical_json`), Ed25519 keys (`signing_keys`), the
signed request payloads and who signs each kind (`payloads`, `signed_requests`), node
receipts (`share_receipt`), model-share fetches (`model_fetch`), the model spec and its
ledger form (`model_spec`), the model file format (`model_file`), the job digest
(`job_digest`) and attestation messages (`attestation`). Each role imports these; none of
these imports a role, the ledger or the transport.
"""
