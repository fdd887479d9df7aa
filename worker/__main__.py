"""`python -m worker` is the `videoscan` command."""

from worker.cli import main

raise SystemExit(main())
