"""What every run needs and both twins read: the experiment spec (specs), the model catalog and
profiles (registry), the architecture both twins build from one table (arch), the shared NumPy
random stream (randomness), the divergence rule (divergence), the datasets (data) and the optional-dependency probes (optional).
Nothing here imports from the rest of bench."""
