"""`python -m bench.operator_faults`: see run.py."""

from bench.operator_faults.run import main

raise SystemExit(main())
