"""`python -m stream_detector.worker`: the same as `stream-detector worker`."""

import argparse
import sys

from stream_detector.logs import setup_logging
from stream_detector.worker import run

setup_logging()
sys.exit(run(argparse.Namespace()))
