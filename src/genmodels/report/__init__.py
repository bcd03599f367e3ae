"""The HTML comparison report: compare.py gathers what each run has, html.py renders the page (image grids and plots are drawn by genmodels.images and genmodels.plots)."""
