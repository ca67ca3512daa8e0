from quilt_verify.cli import main

raise SystemExit(main())
