"""`mutualmind demo`: the whole story of a round on real data, on a local cluster."""
