"""REST APIs of the cases app, one module per concept: labels, cases, series and uploads."""
