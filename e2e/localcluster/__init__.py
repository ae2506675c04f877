"""A local Kubernetes control plane with fake GPU nodes, for modelfleet's tests and demo.

Standard library only: ``e2e/cluster`` runs before any virtualenv exists.
One concern per module: ``config`` (versions and paths), ``build``, ``procs`` (processes and
ports), ``pki``, ``kubeconfig``, ``components`` (how each process is started), ``nodes``,
``prometheus``, ``state``, ``cluster`` (up/down/status) and ``cli``.
"""
