"""`scaling sweep ...`: placeholder registration, filled in with the sweep runner."""


def register(subparsers) -> None:
    pass
