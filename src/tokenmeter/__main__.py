import sys

from tokenmeter.cli.cli import main

sys.exit(main())
