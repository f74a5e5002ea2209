"""The `scaling` command line: the one package above all three layers. It wires the subcommands of
scaling/ (train), sweeps/ (sweep) and analysis/ (fit, predict, allocate, backtest, moore, report), and
holds the flags they share (tables.py); scaling/, sweeps/ and analysis/ never import it."""
