"""The MPC node: share store, node servers, and (mpcnode.worker) the MPC worker."""
