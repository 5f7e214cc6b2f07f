"""confprofile: label-free user profiling with LLMs (Conf-Profile and beyond)."""

__version__ = "0.1.0"
