"""The book's helpers: figure style and notebook result recording."""
