"""The detectors' own errors; the worker maps them to the contract's error codes."""


class DetectorError(Exception):
    """Root of every error the detectors raise on purpose."""


class UnknownDetector(DetectorError, ValueError):
    """A detector name is not in the registry (the text lists the known ones)."""


class ModelUnavailable(DetectorError, ValueError):
    """A detector's model cannot be found or read (the text names its location)."""
