"""`python -m stream_detector` is the `stream-detector` command."""

import sys

from stream_detector.cli import main

sys.exit(main())
