from ptm_core.cli.commands import main

raise SystemExit(main())
