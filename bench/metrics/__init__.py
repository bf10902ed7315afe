"""Quality metrics: fidelity, mode coverage, VAE likelihoods, stability."""
