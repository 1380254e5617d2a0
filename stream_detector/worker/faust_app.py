"""The worker as a plain Faust app, for Faust's own command line:

    faust -A stream_detector.worker.faust_app worker --without-web -l info

Same configuration (``STREAM_DETECTOR_*`` environment) and behaviour as
`stream-detector worker`; importing this module connects to Kafka to ensure the topics.
"""

from stream_detector.worker.app import load_app

app = load_app()
