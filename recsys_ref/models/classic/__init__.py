"""Classic recommenders: popularity, neighbourhood, matrix factorisation, content, hybrids."""
