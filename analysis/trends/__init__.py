"""Moore's law for LLMs: exponential trends in training compute, hardware and transistors, and what they
imply for the compute-optimal loss frontier per calendar year.

loaders          Epoch AI CSVs (notable models, ML hardware) and Karl Rupp's microprocessor data
frontier_models  a built-in table of frontier language models, typed in from their papers
published        the published doubling times we compare against, with citations
doubling         log-linear least-squares doubling times with bootstrap intervals, and the fit windows
loss_frontier    the compute-optimal loss frontier L(N, D) the synthesis evaluates, with its parameter draws
extrapolation    how far the synthesis carries a fit beyond the range it was fitted on, and the guard
algorithmic      algorithmic progress: the default halving time with its interval, or one fitted from a CSV
limits           the stock of public text and the largest feasible training run, and saturating scenarios
synthesis        scenarios for effective compute -> compute-optimal loss, N_opt, D_opt per year
headlines        the one-sentence answers: effective compute, compute and cost to a fixed loss, loss per year
summary          moore.json, summary.md and summary.html
figures          the exponentials, the forest plot of doubling times, loss by year, models vs the frontier
"""
