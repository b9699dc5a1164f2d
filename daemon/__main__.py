"""``python -m daemon``: the ``edgebill`` command line."""

from daemon.cli import main

raise SystemExit(main())
