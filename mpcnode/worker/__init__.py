"""The CrypTen side of a node: one process per MPC job (`python -m mpcnode.worker`).

model_spec   what to train (strict parsing of untrusted JSON), contributions
job_spec     the worker's input file (rank, rendezvous, datasets, output dir)
inputs       this node's shares of the job's datasets, checked to fit together
backend      the few operations where secret and plaintext arithmetic differ
comparison   [x < 0] with carry-save adders: 9 rounds instead of CrypTen's 15 (3 parties)
softmax_training  the training softmax in few rounds (same algorithm in both backends)
dealer_prefetch   a run's dealer material in one batched exchange before training
layers       initial weights, forward pass, gradient at the logits
training     normalisation and the batched leave-one-out training pass
evaluation   the n+1 validation metrics: the only values revealed
banzhaf      Data Banzhaf: a model per coalition in the same pass, the estimator on shares
reference    the same algorithm in float torch, LOO (and Banzhaf) by naive retraining
model_shares the trained model's shares: read, reconstruct, predict
run          the worker process; ttp: the dealer's per-job TTP process
lifetime     job processes die with their parent and at their deadline (and hand it on)
grpc_plane   CrypTen's communicator over the data plane's links (plane_*: session, links,
             codec, dealer, gRPC client and servicer, install)
party_context  which party the running code is, for CrypTen's globals (per thread/process)
plane_memory every party in one process on in-memory links, for protocol tests
"""
