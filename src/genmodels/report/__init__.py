"""Pictures of models: image grids, loss curves, latent plots (and later the HTML report)."""
