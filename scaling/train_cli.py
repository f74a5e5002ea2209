"""`scaling train`: placeholder registration, filled in with the training loop."""


def register(subparsers) -> None:
    subparsers.add_parser("train", help="train one model (in progress)")
