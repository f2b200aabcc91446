"""`python -m voxscale_lab.devcluster up|down` (the same as `voxscale dev cluster up|down`)."""

from __future__ import annotations

import sys

from voxscale_lab.devcluster.commands import main

sys.exit(main())
