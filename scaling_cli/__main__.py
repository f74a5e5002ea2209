"""`python -m scaling_cli ...`: the `scaling` command without the installed script."""

import sys

from scaling_cli.main import main

sys.exit(main())
