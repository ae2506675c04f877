"""`python -m bench.keda_vs_modelfleet`: see run.py."""

from bench.keda_vs_modelfleet.run import main

raise SystemExit(main())
