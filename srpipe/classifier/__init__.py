"""Image classification on the shared CNN core: datasets, training, inference and plots."""
