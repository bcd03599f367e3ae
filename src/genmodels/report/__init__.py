"""Pictures of models: image grids, loss curves, latent plots, and the HTML comparison report (html.py, compare.py)."""
