"""Placeholder until the command line lands."""


def main(argv=None) -> int:
    raise SystemExit("videoscan: not built yet")
