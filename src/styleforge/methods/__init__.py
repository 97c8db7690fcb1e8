"""One module per paper. Each registers its method class with ``@register_method``."""
