"""`mutualmind admin`: the operator's command line against a running coordinator.

One module per subcommand group (`nodes_cli`, `providers_cli`, `mint_cli`, `round_cli`,
`ledger_cli`), registered by `cli.py`. They talk to the coordinator's Admin API (cluster
port, mutual TLS with the cluster's `admin` certificate) and, for what a sponsor signs
(`round open`), to its public Market API. Pure parts — signing a round, the round
table, the round chart — know nothing of gRPC and are tested on their own.
"""
