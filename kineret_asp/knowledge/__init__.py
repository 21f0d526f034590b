"""A knowledge base loaded: its folders, its parsed rules, its vocabulary, the names of its keys, its caches."""
