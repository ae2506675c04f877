"""Fleet-scale reconcile benchmark on the local cluster."""
