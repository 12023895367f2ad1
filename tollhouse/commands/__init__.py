"""One module per ``tollhouse`` subcommand: ``add_parser(subparsers, name, common)`` and ``main(args)``."""
