"""The vocabulary every role shares: what travels between provider, node, coordinator and ledger.

Pure Python (no grpc, no torch, no CrypTen): dataset ids and the schema rules (`dataset`),
fixed-point precision (`fixed_point`), upload chunking (`upload`), canonical JSON
(`canonical_json`), Ed25519 keys (`signing_keys`), the signed request payloads, their
fields and signers (`payloads`) and their builders (`signed_requests`), node receipts
(`share_receipt`), model-share fetches (`model_fetch`), the model spec, its ledger form
and the contribution formula (`model_spec`), the model file format (`model_file`), the
job digest (`job_digest`), attestation messages (`attestation`), the time limits
(`deadlines`) and the domain states as enums (`states`). Each role imports these; none of
these imports a role, the ledger or the transport.
"""
