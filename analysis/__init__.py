"""Scaling-law analysis: load run tables, fit scaling laws, quantify uncertainty."""
