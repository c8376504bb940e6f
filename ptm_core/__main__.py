from ptm_core.cli import main

raise SystemExit(main())
