from serving.main import main

raise SystemExit(main())
