import sys

from tokenmeter.cli import main

sys.exit(main())
