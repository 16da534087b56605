"""``python -m canarymesh.controller --state-dir D``: the canary controller of a local mesh."""

from canarymesh.controller.local import main

raise SystemExit(main())
