"""The `canarymesh` command line (shell): thin commands over the pure packages."""
