"""Sequential recommenders: the next item from a user's ordered history (chapter 10)."""
