"""Moore's law for LLMs: exponential trends in training compute, hardware and transistors, and what they
imply for the compute-optimal loss frontier per calendar year.

loaders          Epoch AI CSVs (notable models, ML hardware) and Karl Rupp's microprocessor data
frontier_models  a built-in table of frontier language models, typed in from their papers
published        the published doubling times we compare against, with citations
doubling         log-linear least-squares doubling times with bootstrap intervals, and the fit windows
synthesis        scenarios for effective compute -> compute-optimal loss, N_opt, D_opt per year
figures          the exponentials, the forest plot of doubling times, loss by year, models vs the frontier
"""
