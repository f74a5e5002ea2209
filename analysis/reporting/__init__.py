"""The HTML report of a sweep or a results table: figures (PNG and SVG), tables of every fit, the backtest.

  inputs.py   a sweep directory or a results file -> the results table and each run's loss curve
  fits.py     the fits shown (approaches 3, 2, 1 with bootstrap, or a given FIT.json) and the backtest
  figures.py  one matplotlib Figure per plot, pure functions of the data and the fits
  page.py     the HTML page
  build.py    all of it into a staging directory, renamed to REPORT_DIR when complete
"""
