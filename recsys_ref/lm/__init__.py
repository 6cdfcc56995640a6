"""Language models: text encoders, generators, item and user texts."""
