"""The HTML comparison report: compare.py gathers what each run has (a summary.RunSummary each), html.py
renders the page (image grids and plots are drawn by genmodels.images and genmodels.plots), findings.py
words what the runs show, and catalog.py declares every metric (glossary.py renders its entries)."""
