"""Training: `python -m train DATASET MODEL`. One trainer for every family; configs under train/configs/."""
