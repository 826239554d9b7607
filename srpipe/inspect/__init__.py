"""Look inside CNNs: layer tables, receptive fields, learned filters, feature maps, classic kernels."""
