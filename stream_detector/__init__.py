"""stream-detector: a streaming detector of model-extraction (distillation) campaigns."""

__version__ = "0.1.0"
