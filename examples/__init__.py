"""Networks of your own for genmodels, by import path (docs/guide.md, "Your own networks").

Put this folder's parent on PYTHONPATH (or install your own package) and name a factory:

    genmodels train vae --encoder examples.resnet:encoder --decoder examples.resnet:decoder \\
        --encoder-kwargs '{"width": 32}' --out runs/resnet-vae
"""
