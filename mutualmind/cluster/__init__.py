"""The cluster's identity: its CA, member certificates, node signing keys, manifest.

`certs` builds and reads them (pure file and crypto work, no gRPC); `cli` is the
`mutualmind cluster` command, whose subcommands are registered one module each.
"""
