"""`python -m grokinterp.cli ...` runs the command line."""

from grokinterp.cli.main import main

raise SystemExit(main())
