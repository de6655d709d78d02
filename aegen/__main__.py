import sys

from aegen.cli import main

sys.exit(main())
