import sys

from clipora.cli import main

sys.exit(main())
