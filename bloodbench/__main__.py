from bloodbench.cli import main

raise SystemExit(main())
