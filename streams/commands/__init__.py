"""Subcommands of ``opengym``, one module per group."""
