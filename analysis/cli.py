"""`scaling fit` and `scaling allocate`: placeholder registration, filled in with the analysis."""


def register(subparsers) -> None:
    pass
