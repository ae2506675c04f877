"""`python -m bench.fleet`: see run.py."""

from bench.fleet.run import main

raise SystemExit(main())
