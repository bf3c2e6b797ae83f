import sys

from spamops.cli import main

sys.exit(main())
