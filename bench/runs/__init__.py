"""Running experiments and what they leave behind: the runner (train, evaluate, time one
experiment), its records (atomic JSON, identity hashes, manifests), the
tables and plots rendered from records, and the study and its report built on top of them."""
