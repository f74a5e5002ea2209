"""`scaling moore`: placeholder registration, filled in with the Moore's-law trends analysis."""


def register(subparsers) -> None:
    pass
